// uPlot (~20 kB gzip), loaded only with the pages that draw charts. Zoom: drag across the plot; double-click resets.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  color: string;
  bars?: boolean;
}

export default function Chart({ x, ys, series, title, height = 260, xRange, time = true, onReady }: { x: number[]; ys: number[][]; series: Series[]; title: string; height?: number; xRange?: [number, number]; time?: boolean; onReady?: () => void }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const node = el.current;
    if (!node) return;
    const width = Math.max(200, node.clientWidth);
    const bars = uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
    const plot = new uPlot(
      {
        width,
        height,
        cursor: { drag: { x: true, y: false } },
        scales: { x: xRange ? { time, range: () => xRange } : { time } },
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, fill: s.bars ? s.color : undefined, paths: s.bars ? bars : undefined }))],
        axes: [{}, { size: 80 }],
      },
      [x, ...ys] as uPlot.AlignedData,
      node,
    );
    onReady?.();
    const resize = () => plot.setSize({ width: Math.max(200, node.clientWidth), height });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [x, ys, series, height, xRange?.[0], xRange?.[1], time]); // eslint-disable-line react-hooks/exhaustive-deps
  return <div ref={el} className="chart" role="img" aria-label={title} />;
}
