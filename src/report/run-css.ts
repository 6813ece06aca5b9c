/**
 * The report's stylesheet, inlined in the page. System fonts only (nothing
 * is fetched). Narrow screens: tables and drawings scroll sideways in their
 * own box, the text reflows. Print: no scroll boxes, drawings fit the page,
 * sections do not split a table's row.
 */
export const REPORT_CSS = `
:root{--fg:#1d2330;--mut:#5b6475;--bg:#fff;--line:#d8dde6;--ok:#3a8f4b;--bad:#c8372d;--run:#d9a21b;--acc:#2f5fa7}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1100px;padding:16px;color:var(--fg);background:var(--bg);
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5em;margin:.2em 0 .4em;word-break:break-all}
h2{font-size:1.2em;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:2px solid var(--line)}
h3{font-size:1.02em;margin:1.1em 0 .3em}
h4{font-size:.95em;margin:.8em 0 .2em;color:var(--mut)}
small{color:var(--mut);font-weight:normal}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
code{word-break:break-all}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}
.meta dt{color:var(--mut)}
.meta dd{margin:0;word-break:break-word}
.tw,.sw{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;width:100%;margin:.3em 0}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid var(--line)}
thead th{background:#f3f5f8;font-weight:600;white-space:nowrap}
table.fig th{font-weight:normal;color:var(--mut);width:35%}
table.steps td:nth-child(8){min-width:16em}
.st{display:inline-block;padding:0 6px;border-radius:3px;font-size:.85em;background:#eef0f4}
.st-succeeded,.st-done{background:#dff1e2;color:#1f5f2b}
.st-failed,.st-aborted,.st-refused{background:#f8dcda;color:#8c1d15}
.st-running,.st-stopped,.st-waiting,.st-pending{background:#fbefcf;color:#6e5208}
.err{color:var(--bad)}
.none{color:var(--mut);font-style:italic}
.summary{margin:.1em 0 .4em}
.np{background:#fde2e1;color:#8c1d15;border-radius:2px;padding:0 1px;font-family:ui-monospace,monospace}
svg{display:block;max-width:none;height:auto;font:12px system-ui,sans-serif}
svg .lbl{fill:var(--fg)} svg .tick{fill:var(--mut);font-size:11px}
svg .axis{stroke:#8a93a3} svg .grid{stroke:#eceff3}
svg .attempt.ok{fill:var(--ok)} svg .attempt.bad{fill:var(--bad)} svg .attempt.run{fill:var(--run)}
svg .attempt.skip{fill:#b9c0cc} svg .attempt.earlier{fill:#f0b7b2;stroke:var(--bad);stroke-dasharray:3 2}
svg .marker path{fill:var(--acc)} svg .marker.bad path{fill:var(--bad)}
svg .marker-line{stroke:var(--acc);stroke-dasharray:2 3}
svg .log-tick{stroke:#6b3fa0;stroke-width:2}
svg .series{stroke:var(--acc);stroke-width:2} svg circle.series{fill:var(--acc)} svg .pt{fill:var(--acc)}
svg .slot-bg{fill:#f1f3f6}
.legend{font-size:.85em;color:var(--mut)}
.legend .k{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px;vertical-align:middle;border-radius:2px}
.k.ok{background:var(--ok)} .k.bad{background:var(--bad)} .k.run{background:var(--run)}
.k.earlier{background:#f0b7b2} .k.mk{background:var(--acc)} .k.lt{background:#6b3fa0;width:3px}
.ranges{list-style:none;padding:0;margin:.2em 0;font-size:.9em}
.sw-c{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px;vertical-align:middle}
.src{font-size:.88em;color:var(--mut);margin:.1em 0}
.reads,.more{font-size:.88em;color:var(--mut)}
figure.lag{display:inline-block;margin:.3em 1em .3em 0;max-width:100%;overflow-x:auto}
figcaption{font-size:.85em;color:var(--mut)}
pre{background:#f6f7f9;border:1px solid var(--line);padding:6px 8px;overflow-x:auto;white-space:pre;margin:.2em 0}
pre .t{color:var(--mut)}
footer{margin-top:2em;font-size:.8em;color:var(--mut)}
@media (max-width:600px){
  body{padding:10px;font-size:14px}
  th,td{padding:3px 5px}
  .meta{grid-template-columns:1fr}
  .meta dt{margin-top:.3em;font-weight:600}
  table.cards thead{display:none}
  table.cards tr{display:block;padding:4px 0;border-bottom:1px solid var(--line)}
  table.cards td{display:inline-block;border:none;padding:1px 8px 1px 0}
  table.cards td::before{content:attr(data-label) ": ";color:var(--mut);font-size:.85em}
  table.cards td.wide{display:block}
  table.cards td.wide::before{content:""}
  .sw::before{content:"scroll sideways";display:block;font-size:.75em;color:var(--mut)}
  figure.lag{margin-right:0;display:block}
  .sw.fit::before{content:none}
  .sw.fit svg,svg.chart{width:100%;height:auto}
}
@media print{
  body{max-width:none;padding:0;font-size:10.5pt}
  .tw,.sw,pre,figure.lag{overflow:visible}
  svg{max-width:100%}
  pre{white-space:pre-wrap;word-break:break-all}
  h2{break-after:avoid} tr,.slot-row,figure{break-inside:avoid}
  a{color:inherit;text-decoration:none}
}
`;
