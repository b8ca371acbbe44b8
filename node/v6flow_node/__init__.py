"""The v6flow node daemon: runs algorithm containers for one organization at a data station."""
