#!/usr/bin/env bash
# Regenerate every rendered diagram in docs/img/ from its source beside it, offline:
#   *.dot  (Graphviz)  -> *.svg, and *.png for the pictures the README shows
#   *.puml (PlantUML)  -> *.svg and *.png
# Needs Graphviz and PlantUML (Debian: apt-get install -y graphviz plantuml; PlantUML runs on
# the installed Java). The screenshots (ui-*.png, flow-run.png) are not diagrams: they come
# from benchmarks/ui_screenshots.py and benchmarks/ui_screenshot.py.
#
#   docs/img/render.sh            # everything
#   docs/img/render.sh architecture.dot task-sequence.puml    # only these
set -euo pipefail

cd "$(dirname "$0")"

# Pictures that also get a PNG (the README shows PNGs); the rest get an SVG only.
PNG_TOO=(architecture task-sequence)
# PNGs larger than the SVGs, so they stay sharp when a browser scales them down.
DPI_DOT=144        # 2x: Graphviz's SVG unit is 72 dpi
DPI_PUML=144       # 1.5x of PlantUML's 96 dpi: PlantUML cuts a PNG at 4096 pixels
# PlantUML writes the one font it measured with; name fallbacks of the same widths
# (Liberation Sans is metric-compatible with Arial and Helvetica).
FONTS="Liberation Sans,Arial,Helvetica,sans-serif"

missing=()
command -v dot >/dev/null || missing+=(graphviz)
command -v plantuml >/dev/null || missing+=(plantuml)
if ((${#missing[@]})); then
    echo "render.sh: missing ${missing[*]}; install with: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

wants_png() {
    local name=$1 each
    for each in "${PNG_TOO[@]}"; do [[ $each == "$name" ]] && return 0; done
    return 1
}

if (($#)); then sources=("$@"); else sources=(*.dot *.puml); fi

for source in "${sources[@]}"; do
    name=${source%.*}
    case $source in
        *.dot)
            dot -Tsvg "$source" -o "$name.svg"
            if wants_png "$name"; then dot -Tpng -Gdpi="$DPI_DOT" "$source" -o "$name.png"; fi
            ;;
        *.puml)
            # -pipe: output named by us, not by the @startuml line; nothing else is written
            plantuml -tsvg -pipe <"$source" >"$name.svg"
            sed -i "s/font-family=\"Liberation Sans\"/font-family=\"$FONTS\"/g" "$name.svg"
            if wants_png "$name"; then
                plantuml -tpng -Sdpi="$DPI_PUML" -pipe <"$source" >"$name.png"
            fi
            ;;
        *)
            echo "render.sh: $source: not a .dot or .puml file" >&2
            exit 1
            ;;
    esac
    echo "rendered $source"
done
