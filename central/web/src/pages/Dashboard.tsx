import { Suspense, lazy, useEffect, useMemo, useState } from "react";
import { api, call, getAccessToken, type Schemas } from "../api/client";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { Alert, Card, fmtTime, fmtWh, short, useLoad } from "../ui";

// Fetched as soon as this page loads, beside its API calls (not after the first of them answers).
const chart = import("../Chart");
const Chart = lazy(() => chart);
const DAY = 86_400_000;
const RANGES = { day: DAY, week: 7 * DAY, month: 30 * DAY } as const;
type Range = keyof typeof RANGES;

interface Live {
  meter_serial: string;
  power_w: number;
  timestamp_ms: number;
}

/** Live power from the WebSocket: authenticate in the first message, then subscribe to the readings channel. */
export function useLive(onReading?: (r: Live) => void): Live | null {
  const [last, setLast] = useState<Live | null>(null);
  useEffect(() => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/live`);
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: getAccessToken() }));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data)) as { type: string; channel?: string; data?: Live };
      if (msg.type === "ready") ws.send(JSON.stringify({ type: "subscribe", channel: "readings", params: {} }));
      if (msg.type === "event" && msg.channel === "readings" && msg.data) {
        setLast(msg.data);
        onReading?.(msg.data);
      }
    };
    return () => ws.close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return last;
}

function sum(ws: Schemas["WindowEnergy"][], from: number) {
  let imp = 0;
  let exp = 0;
  for (const w of ws) if (w.start_ms >= from) (imp += w.import_wh), (exp += w.export_wh);
  return { imp, exp };
}

function Totals({ title, imp, exp }: { title: string; imp: number; exp: number }) {
  const { t } = useI18n();
  return (
    <Card title={title}>
      <div className="stat">
        <div>
          {t("dash.import")}
          <b data-testid={`${title}-import`}>{fmtWh(imp)}</b>
        </div>
        <div>
          {t("dash.export")}
          <b>{fmtWh(exp)}</b>
        </div>
        <div>
          {t("dash.net")}
          <b>{fmtWh(exp - imp)}</b>
        </div>
      </div>
    </Card>
  );
}

function Proof({ mintKey }: { mintKey: string }) {
  const { t } = useI18n();
  const p = useLoad(() => call(() => api.GET("/api/v1/mints/{key}/proof", { params: { path: { key: mintKey } } })));
  if (p.error) return <Alert error={p.error} />;
  if (!p.data) return <p>{t("app.loading")}</p>;
  return (
    <ol className="proof" aria-label={t("dash.proof.title")}>
      <li>{t("dash.proof.readings", { n: p.data.record_hashes.length })}</li>
      <li className="mono">{t("dash.proof.window", { root: short(p.data.window_root) })}</li>
      <li className="mono">{t("dash.proof.leaf", { leaf: short(p.data.mint_leaf) })}</li>
      <li className="mono">{t("dash.proof.memo", { sig: short(p.data.signature ?? "—") })}</li>
    </ol>
  );
}

export default function Dashboard() {
  const { t } = useI18n();
  const [range, setRange] = useState<Range>("day");
  const meters = useLoad(() => call(() => api.GET("/api/v1/meters")));
  const meter = meters.data?.[0];
  const now = useMemo(() => Date.now(), [range]); // eslint-disable-line react-hooks/exhaustive-deps
  const monthStart = useMemo(() => {
    const d = new Date(now);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }, [now]);
  const energy = useLoad(async () => {
    if (!meter) return null;
    const from = Math.min(monthStart, now - RANGES[range]);
    return call(() => api.GET("/api/v1/meters/{meter_id}/energy", { params: { path: { meter_id: meter.id }, query: { from_ms: from, to_ms: now } } }));
  }, [meter?.id, range]);
  const wallet = useLoad(() => call(() => api.GET("/api/v1/wallet")).catch(() => null));
  const escrow = useLoad(() => call(() => api.GET("/api/v1/market/balances")));
  const mints = useLoad(() => call(() => api.GET("/api/v1/mints", { params: { query: { limit: 5 } } })));
  const fills = useLoad(() => call(() => api.GET("/api/v1/market/fills", { params: { query: { limit: 5 } } })));
  const [open, setOpen] = useState<string | null>(null);
  const live = useLive();
  const windows = energy.data?.windows ?? [];
  const shown = windows.filter((w) => w.start_ms >= now - RANGES[range]);
  const dayStart = now - (now % DAY);
  const today = sum(windows, dayStart);
  const month = sum(windows, monthStart);
  const chart = useMemo(
    () => ({
      x: shown.map((w) => w.start_ms / 1000),
      ys: [shown.map((w) => w.import_wh), shown.map((w) => w.export_wh)],
    }),
    [energy.data, range], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const series = useMemo(() => [
    { label: t("dash.import"), color: "#a4141b" },
    { label: t("dash.export"), color: "#0a6b2f" },
  ], [t]);
  // "Usable": totals, chart, balances and mints are on screen. bench/web.py reads this mark (CPU throttled 4x).
  const [chartReady, setChartReady] = useState(false);
  const loaded = meters.data !== undefined && (meters.data.length === 0 || energy.data !== undefined) && chartReady &&
    escrow.data !== undefined && wallet.data !== undefined && mints.data !== undefined;
  useEffect(() => {
    if (loaded && performance.getEntriesByName("gtx:dashboard-usable").length === 0) {
      requestAnimationFrame(() => performance.mark("gtx:dashboard-usable"));
    }
  }, [loaded]);
  const bal = (asset: string) => escrow.data?.find((b) => b.asset === asset);
  return (
    <>
      <h1>{t("dash.title")}</h1>
      <Alert error={meters.error ?? energy.error} />
      {meters.data && meters.data.length === 0 ? (
        <p className="alert ok">
          {t("dash.noMeter")} <Link href="/app/meters">{t("nav.meters")}</Link>
        </p>
      ) : null}
      <div className="grid">
        <Totals title={t("dash.today")} imp={today.imp} exp={today.exp} />
        <Totals title={t("dash.month")} imp={month.imp} exp={month.exp} />
        <Card title={t("dash.live")}>
          <p aria-live="polite" data-testid="live-power">
            {live ? `${live.power_w} W · ${live.meter_serial} · ${new Date(live.timestamp_ms).toLocaleTimeString()}` : t("dash.live.waiting")}
          </p>
        </Card>
      </div>
      <Card title={t("dash.windows")}>
        <div className="row" role="group" aria-label={t("dash.windows")}>
          {(Object.keys(RANGES) as Range[]).map((r) => (
            <button key={r} type="button" className={r === range ? "" : "secondary"} aria-pressed={r === range} onClick={() => setRange(r)}>
              {t(`dash.range.${r}`)}
            </button>
          ))}
        </div>
        <Suspense fallback={<p>{t("app.loading")}</p>}>
          <Chart x={chart.x} ys={chart.ys} series={series} title={t("dash.windows")} xRange={[(now - RANGES[range]) / 1000, now / 1000]} onReady={() => setChartReady(true)} />
        </Suspense>
      </Card>
      <div className="grid">
        <Card title={t("dash.balances")}>
          <table>
            <thead>
              <tr>
                <th scope="col"></th>
                <th scope="col">{t("dash.energy")}</th>
                <th scope="col">{t("dash.quote")}</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th scope="row">{t("dash.wallet")}</th>
                <td className="num">{wallet.data ? fmtWh(wallet.data.energy_wh) : "—"}</td>
                <td className="num">{wallet.data ? wallet.data.quote : "—"}</td>
              </tr>
              <tr>
                <th scope="row">{t("dash.escrow")}</th>
                <td className="num" data-testid="escrow-energy">{bal("energy") ? `${bal("energy")!.available} / ${bal("energy")!.locked}` : "—"}</td>
                <td className="num" data-testid="escrow-quote">{bal("quote") ? `${bal("quote")!.available} / ${bal("quote")!.locked}` : "—"}</td>
              </tr>
            </tbody>
          </table>
        </Card>
        <Card title={t("dash.mints")}>
          <Alert error={mints.error} />
          {mints.data?.length === 0 ? <p>{t("common.none")}</p> : null}
          <ul className="plain">
            {mints.data?.map((m) => (
              <li key={m.key}>
                {fmtTime(m.window_start)} · {fmtWh(m.energy_wh)} · {m.status}{" "}
                <button type="button" className="linkish" aria-expanded={open === m.key} onClick={() => setOpen(open === m.key ? null : m.key)}>
                  {t("dash.proof")}
                </button>
                {open === m.key ? <Proof mintKey={m.key} /> : null}
              </li>
            ))}
          </ul>
        </Card>
        <Card title={t("dash.trades")}>
          <Alert error={fills.error} />
          {fills.data?.length === 0 ? <p>{t("common.none")}</p> : null}
          <ul className="plain">
            {fills.data?.map((f) => (
              <li key={f.id}>
                {f.side} {fmtWh(f.qty)} @ {f.price} · {f.status}
              </li>
            ))}
          </ul>
        </Card>
      </div>
    </>
  );
}
