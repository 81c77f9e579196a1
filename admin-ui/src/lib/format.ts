/** Local time of an ISO timestamp: the time today, the date and time otherwise. */
export function fmtTime(iso?: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** A duration for people: 45s, 4m 05s, 2h 03m, 3d 4h. */
export function fmtDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

export const shortId = (id: string) => (id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id);

export const pretty = (value: unknown) => JSON.stringify(value, null, 2);

// Control characters but tab and newline, DEL, C1, line separators, bidi overrides, lone surrogates.
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const NAMED: Record<string, string> = { "\r": "\\r", "\x1b": "\\x1b" };
const escapeChar = (c: string) => {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
};

/** Log text with its control characters shown as escapes (as `run.py tail` prints them); newlines kept. */
export const visibleLines = (text: string) => text.replace(UNSAFE, escapeChar);

/** Log text on one row: newlines shown as \n too. */
export const visible = (text: string) => visibleLines(text).replace(/\n/g, "\\n");
