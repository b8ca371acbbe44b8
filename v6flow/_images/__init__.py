"""Private helpers of :mod:`v6flow.images`: the Debian root filesystem and the wheelhouse."""
