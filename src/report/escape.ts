/**
 * Text from the state database in a report: keys can hold any bytes (a
 * finding's key, a log line), so every character that would not show, or
 * would show as something else, is written as a visible escape: control
 * characters and C1 controls as \xNN, bidirectional overrides and other
 * invisible format characters as \u{NNNN}, and the replacement character
 * (a byte that was not UTF-8) as \uFFFD. Nothing is dropped.
 */
const INVISIBLE =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffd]/gu;

function code(ch: string): string {
  const c = ch.codePointAt(0)!;
  return c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u{${c.toString(16).toUpperCase()}}`;
}

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** HTML text (for an element's content or a quoted attribute). */
export function html(text: unknown): string {
  return String(text ?? '').replace(/[&<>"']/g, (c) => HTML[c]!);
}

/** HTML text with invisible characters shown as marked escapes: for keys, log lines, command arguments. */
export function htmlVisible(text: unknown): string {
  const s = String(text ?? '');
  let out = '';
  let last = 0;
  for (const m of s.matchAll(INVISIBLE)) {
    out += html(s.slice(last, m.index)) + `<span class="np">${html(code(m[0]))}</span>`;
    last = m.index! + m[0].length;
  }
  return out + html(s.slice(last));
}

/** Plain text with invisible characters as escapes (for Markdown and SVG titles). */
export function visible(text: unknown): string {
  return String(text ?? '').replace(INVISIBLE, code);
}

/**
 * Markdown table cell: invisible characters escaped, then HTML and Markdown
 * specials neutralised (a key `<script>` or `a|b` must not become markup or
 * a new column).
 */
export function mdCell(text: unknown): string {
  return html(visible(text))
    .replace(/\\/g, '\\\\')
    .replace(/([|`*_[\]#~])/g, '\\$1')
    .replace(/\n/g, ' ');
}

/** An element with escaped attributes (undefined ones left out) around markup that is already safe. */
export function el(name: string, attrs: Record<string, string | number | undefined>, body = ''): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${html(typeof v === 'number' ? Number(v.toFixed(2)) : v)}"`)
    .join('');
  return `<${name}${a}>${body}</${name}>`;
}
