// The API draws an invite's QR code in Unicode half blocks, two rows of
// modules a character, light modules drawn (auth/inviteqr.Terminal with
// invert false). qrFromHalfBlocks reads the modules back, so that the
// page draws the very code the daemon made without a QR encoder of its
// own.

const glyphs: Record<string, [boolean, boolean]> = {
  // [top light, bottom light]
  " ": [false, false],
  "▄": [false, true],
  "▀": [true, false],
  "█": [true, true],
};

// qrFromHalfBlocks returns the modules, true for dark, quiet zone included;
// it throws on text that is not such a drawing.
export function qrFromHalfBlocks(text: string): boolean[][] {
  const lines = text.split("\n").filter((l) => l.length > 0);
  const rows: boolean[][] = [];
  let width = -1;
  for (const line of lines) {
    const chars = Array.from(line);
    if (width < 0) width = chars.length;
    if (chars.length !== width) throw new Error("QR drawing: ragged lines");
    const top: boolean[] = [], bottom: boolean[] = [];
    for (const c of chars) {
      const g = glyphs[c];
      if (!g) throw new Error(`QR drawing: unexpected ${JSON.stringify(c)}`);
      top.push(!g[0]);
      bottom.push(!g[1]);
    }
    rows.push(top, bottom);
  }
  // A code is square: an odd size leaves a padding row below.
  if (width <= 0 || rows.length < width || rows.length > width + 1) throw new Error("QR drawing: not square");
  return rows.slice(0, width);
}

const svgNS = "http://www.w3.org/2000/svg";

// qrSVG draws the modules as an SVG, one path of the dark ones, on a light
// background whatever the colour scheme (scanners need the quiet zone
// light). data-modules holds the matrix as rows of 0 and 1, for tests.
export function qrSVG(modules: boolean[][], label: string): SVGSVGElement {
  const n = modules.length;
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${n} ${n}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.classList.add("qr");
  const bg = document.createElementNS(svgNS, "rect");
  bg.setAttribute("width", String(n));
  bg.setAttribute("height", String(n));
  bg.setAttribute("fill", "#fff");
  svg.appendChild(bg);
  let d = "";
  modules.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  const path = document.createElementNS(svgNS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.appendChild(path);
  svg.dataset.modules = modules.map((r) => r.map((m) => (m ? "1" : "0")).join("")).join("\n");
  return svg;
}
