// A QR code drawn as SVG elements (no innerHTML: the UI runs under Trusted Types).
import { html } from "../lib.js";
import { encode } from "../../vendor/uqr.js";

export function QrCode({ text, label, size = 220 }) {
  const { data } = encode(text, { border: 2 });
  const count = data.length;
  const cells = [];
  data.forEach((row, y) => row.forEach((dark, x) => {
    if (dark) cells.push(`M${x} ${y}h1v1h-1z`);
  }));
  return html`
    <svg class="qr" role="img" aria-label=${label} width=${size} height=${size}
         viewBox=${`0 0 ${count} ${count}`} shape-rendering="crispEdges">
      <rect width=${count} height=${count} fill="#fff" />
      <path d=${cells.join("")} fill="#000" />
    </svg>`;
}
