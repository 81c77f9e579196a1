/** A small line chart of recent samples (newest right), with its scale as text. */
/** `slots` fixes the time axis: the newest sample sits at the right edge. */
export function Sparkline(props: { values: number[]; slots: number; label: string; unit: string }) {
  const { values, slots, label, unit } = props;
  const width = 300;
  const height = 60;
  const peak = values.length ? Math.max(...values) : 0;
  const max = Math.max(1, peak);
  const step = width / Math.max(1, slots - 1);
  const points = values.map((v, i) => `${(width - (values.length - 1 - i) * step).toFixed(1)},${(height - (v / max) * (height - 4) - 2).toFixed(1)}`);
  const latest = values.length ? values[values.length - 1] : 0;
  return (
    <figure className="spark">
      <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label={`${label}: ${latest.toFixed(1)} ${unit} now, peak ${peak.toFixed(1)}`}>
        <line x1="0" y1={height - 1} x2={width} y2={height - 1} className="axis" />
        {points.length > 1 && <polyline points={points.join(" ")} />}
      </svg>
      <figcaption>
        {label}: <strong>{latest.toFixed(1)}</strong> {unit} · peak {peak.toFixed(1)} · last {values.length} s
      </figcaption>
    </figure>
  );
}
