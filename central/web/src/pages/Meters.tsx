import { Suspense, lazy, useMemo, useState } from "react";
import { ApiFailure, api, call, type Schemas } from "../api/client";
import { useI18n } from "../i18n";
import { Alert, Card, Field, Form, download, fmtTime, useAction, useLoad } from "../ui";

const Chart = lazy(() => import("../Chart"));
const DAY = 86_400_000;

const csvCell = (v: unknown) => {
  const s = String(v ?? "");
  // Quote every cell; a leading =,+,-,@ is prefixed so a spreadsheet never runs it as a formula.
  return `"${(/^[=+\-@]/.test(s) ? `'${s}` : s).replace(/"/g, '""')}"`;
};
const toCsv = (header: string[], rows: unknown[][]) => [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\n") + "\n";

async function allReadings(meterId: string, from: number, to: number): Promise<Schemas["ReadingOut"][]> {
  const out: Schemas["ReadingOut"][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await call(() =>
      api.GET("/api/v1/meters/{meter_id}/readings", { params: { path: { meter_id: meterId }, query: { from_ms: from, to_ms: to, limit: 1000, cursor } } }),
    );
    out.push(...page.readings);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return out;
}

function History({ meter }: { meter: Schemas["MeterOut"] }) {
  const { t } = useI18n();
  const to = useMemo(() => Date.now(), []);
  const from = to - DAY;
  const readings = useLoad(() => allReadings(meter.id, from, to), [meter.id]);
  const act = useAction();
  const chart = useMemo(() => {
    const rs = readings.data ?? [];
    return { x: rs.map((r) => r.timestamp_ms / 1000), ys: [rs.map((r) => r.power_w ?? 0)] };
  }, [readings.data]);
  const series = useMemo(() => [{ label: "W", color: "#0b5cad" }], []);
  return (
    <Card title={`${t("meters.history")} · ${meter.serial}`}>
      <Alert error={readings.error ?? act.error} />
      <Suspense fallback={<p>{t("app.loading")}</p>}>
        <Chart x={chart.x} ys={chart.ys} series={series} title={t("meters.history")} height={200} />
      </Suspense>
      <div className="row">
        <button
          type="button"
          className="secondary"
          onClick={() =>
            act.run(async () => {
              const rs = await allReadings(meter.id, from, to);
              download(`readings-${meter.serial}.csv`, toCsv(["timestamp_ms", "seq", "import_wh", "export_wh", "power_w", "record_hash"], rs.map((r) => [r.timestamp_ms, r.seq, r.import_wh, r.export_wh, r.power_w, r.record_hash])));
            })
          }
        >
          {t("meters.csvReadings")}
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() =>
            act.run(async () => {
              const e = await call(() => api.GET("/api/v1/meters/{meter_id}/energy", { params: { path: { meter_id: meter.id }, query: { from_ms: to - 30 * DAY, to_ms: to } } }));
              download(`energy-${meter.serial}.csv`, toCsv(["start_ms", "import_wh", "export_wh", "readings"], e.windows.map((w) => [w.start_ms, w.import_wh, w.export_wh, w.readings])));
            })
          }
        >
          {t("meters.csvEnergy")}
        </button>
      </div>
    </Card>
  );
}

export default function Meters() {
  const { t } = useI18n();
  const meters = useLoad(() => call(() => api.GET("/api/v1/meters")));
  const [serial, setSerial] = useState("");
  const [key, setKey] = useState("");
  const claim = useAction();
  const release = useAction();
  return (
    <>
      <h1>{t("meters.title")}</h1>
      <div className="grid">
        <Card title={t("meters.claim")}>
          <p className="muted">{t("meters.claim.rule")}</p>
          <Form
            label={t("meters.claim")}
            onSubmit={() =>
              claim.run(async () => {
                try {
                  await call(() => api.POST("/api/v1/meters/claim", { body: { serial, meter_key: key } }));
                } catch (e) {
                  if (e instanceof ApiFailure && e.status === 429) throw new ApiFailure(429, "claim_rate_limited");
                  throw e;
                }
                setSerial("");
                setKey("");
                meters.reload();
              })
            }
          >
            <Field label={t("meters.serial")} name="serial" value={serial} onChange={setSerial} autoComplete="off" />
            <Field label={t("meters.key")} name="meter-key" type="password" value={key} onChange={setKey} autoComplete="off" />
            <Alert error={claim.error} />
            <button type="submit" disabled={claim.busy}>
              {t("meters.claim.submit")}
            </button>
          </Form>
        </Card>
        <Card title={t("meters.title")}>
          <Alert error={meters.error ?? release.error} />
          {meters.data?.length === 0 ? <p>{t("meters.none")}</p> : null}
          <ul className="plain" aria-label={t("meters.title")}>
            {meters.data?.map((m) => (
              <li key={m.id} data-testid="meter">
                <b>{m.serial}</b> · {m.model} · {m.protocol} · {t("meters.device")} {m.device_status} · {fmtTime(m.claimed_at)}{" "}
                <button
                  type="button"
                  className="secondary"
                  onClick={() =>
                    release.run(async () => {
                      await call(() => api.DELETE("/api/v1/meters/{serial}/claim", { params: { path: { serial: m.serial } } }));
                      meters.reload();
                    })
                  }
                >
                  {t("meters.release")} {m.serial}
                </button>
              </li>
            ))}
          </ul>
        </Card>
      </div>
      {meters.data?.map((m) => <History key={m.id} meter={m} />)}
    </>
  );
}
