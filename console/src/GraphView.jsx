// A graph's structure (GET /assistants/{id}/graph: LangGraph's get_graph() as JSON) drawn as boxes
// and arrows in plain SVG: nodes in rows by their distance from __start__, edges top to bottom, and
// an edge back up (a loop) as a curve on the side. Enough for the graphs people read at a glance.
const W = 130;
const H = 34;
const GAP_X = 30;
const GAP_Y = 46;

function layout(graph) {
  const ids = graph.nodes.map((n) => n.id);
  const out = Object.fromEntries(ids.map((id) => [id, []]));
  for (const e of graph.edges) out[e.source]?.push(e.target);
  const rank = {};
  const start = ids.includes("__start__") ? "__start__" : ids[0];
  const queue = start ? [start] : [];
  if (start) rank[start] = 0;
  while (queue.length) {
    const id = queue.shift();
    for (const next of out[id] ?? []) {
      if (!(next in rank)) {
        rank[next] = rank[id] + 1;
        queue.push(next);
      }
    }
  }
  delete rank.__end__; // always the last row, however short the path to it
  let deepest = Math.max(0, ...Object.values(rank));
  for (const id of ids) if (id !== "__end__" && !(id in rank)) rank[id] = ++deepest; // unreachable: below
  if (ids.includes("__end__")) rank.__end__ = deepest + 1;
  const rows = {};
  for (const id of ids) (rows[rank[id]] ??= []).push(id);
  const width = Math.max(...Object.values(rows).map((r) => r.length)) * (W + GAP_X) + GAP_X;
  const pos = {};
  for (const [r, row] of Object.entries(rows)) {
    const rowWidth = row.length * (W + GAP_X) - GAP_X;
    row.forEach((id, i) => {
      pos[id] = { x: (width - rowWidth) / 2 + i * (W + GAP_X), y: GAP_Y / 2 + Number(r) * (H + GAP_Y) };
    });
  }
  const height = (Math.max(...Object.keys(rows).map(Number)) + 1) * (H + GAP_Y);
  return { pos, width: width + 60, height };
}

export function GraphView({ graph }) {
  if (!graph?.nodes?.length) return <p className="muted">No structure to draw.</p>;
  const { pos, width, height } = layout(graph);
  return (
    <svg className="graph" width={width} height={height} data-testid="graph-svg" role="img">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" fill="#64748b" />
        </marker>
      </defs>
      {graph.edges.map((e, i) => {
        const a = pos[e.source];
        const b = pos[e.target];
        if (!a || !b) return null;
        const down = b.y > a.y;
        const d = down
          ? `M${a.x + W / 2},${a.y + H} L${b.x + W / 2},${b.y}`
          : `M${a.x + W},${a.y + H / 2} C${a.x + W + 50},${a.y} ${b.x + W + 50},${b.y + H} ${b.x + W},${b.y + H / 2}`;
        return (
          <path
            key={i}
            d={d}
            fill="none"
            stroke="#64748b"
            strokeDasharray={e.conditional ? "5 4" : undefined}
            markerEnd="url(#arrow)"
          />
        );
      })}
      {graph.nodes.map((n) => {
        const p = pos[n.id];
        const special = n.id === "__start__" || n.id === "__end__";
        return (
          <g key={n.id} transform={`translate(${p.x},${p.y})`} data-testid="graph-node" data-node={n.id}>
            <rect width={W} height={H} rx={special ? 17 : 6} className={special ? "gnode special" : "gnode"} />
            <text x={W / 2} y={H / 2 + 4} textAnchor="middle">
              {n.id.replace(/^__(.*)__$/, "$1")}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
