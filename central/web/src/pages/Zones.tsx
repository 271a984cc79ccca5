// Market depth on the trading page: the grid zone tree with each zone's grid fee, loss and the utility's tariffs
// (time of use: pick the hour), the zone of each of my meters, and one past epoch's per-zone results.
import { useState } from "react";
import { api, call, type Schemas } from "../api/client";
import { useI18n } from "../i18n";
import { Alert, Card, fmtTime, fmtWh, useLoad } from "../ui";

type Zone = Schemas["ZoneOut"];

function ZoneNode({ zones, name, depth }: { zones: Zone[]; name: string | null; depth: number }) {
  const { t } = useI18n();
  const kids = zones.filter((z) => (z.parent ?? null) === name);
  if (kids.length === 0) return null;
  return (
    <ul className={depth === 0 ? "tree" : "tree sub"} aria-label={depth === 0 ? t("zones.tree") : undefined}>
      {kids.map((z) => (
        <li key={z.name} data-testid="zone">
          <b>{z.name}</b>
          <span className="muted">
            {" · "}
            {t("zones.fee", { perKwh: z.fee_per_kwh, bps: z.fee_bps })}
            {" · "}
            {t("zones.loss", { pct: (z.loss_bps / 100).toFixed(2) })}
            {" · "}
            {z.retail ? t("zones.retail", { price: z.retail }) : t("zones.noRetail")}
            {" · "}
            {z.feed_in ? t("zones.feedIn", { price: z.feed_in }) : t("zones.noFeedIn")}
          </span>
          <ZoneNode zones={zones} name={z.name} depth={depth + 1} />
        </li>
      ))}
    </ul>
  );
}

export function ZonesCard() {
  const { t } = useI18n();
  const [hour, setHour] = useState(new Date().getUTCHours());
  const at = (() => {
    const d = new Date();
    d.setUTCHours(hour, 0, 0, 0);
    return d.toISOString();
  })();
  const zones = useLoad(() => call(() => api.GET("/api/v1/market/zones", { params: { query: { at } } })), [at]);
  const meters = useLoad(async () => {
    const ms = await call(() => api.GET("/api/v1/meters"));
    return Promise.all(ms.map((m) => call(() => api.GET("/api/v1/market/meters/{serial}/zone", { params: { path: { serial: m.serial } } }))));
  });
  return (
    <Card title={t("zones.title")}>
      <Alert error={zones.error ?? meters.error} />
      <div className="field">
        <label htmlFor="f-zone-hour">{t("zones.hour")}</label>
        <select id="f-zone-hour" value={hour} onChange={(e) => setHour(Number(e.target.value))}>
          {Array.from({ length: 24 }, (_, h) => (
            <option key={h} value={h}>
              {`${String(h).padStart(2, "0")}:00 UTC`}
            </option>
          ))}
        </select>
      </div>
      {zones.data ? <ZoneNode zones={zones.data.zones} name={null} depth={0} /> : null}
      {zones.data?.grid_operator ? <p className="muted">{t("zones.operator")} <span className="mono">{zones.data.grid_operator}</span></p> : null}
      <h3>{t("zones.mine")}</h3>
      <ul className="plain" aria-label={t("zones.mine")}>
        {meters.data?.length === 0 ? <li>{t("meters.none")}</li> : null}
        {meters.data?.map((m) => (
          <li key={m.serial} data-testid="meter-zone">
            {t("zones.meterIn", { serial: m.serial, zone: m.zone })}
          </li>
        ))}
      </ul>
    </Card>
  );
}

export function EpochZonesCard({ epochs }: { epochs: { start: string; order_set_hash?: string | null }[] }) {
  const { t } = useI18n();
  const cleared = epochs.filter((e) => e.order_set_hash);
  const [pick, setPick] = useState<string>("");
  const start = pick || cleared[0]?.start || "";
  const rows = useLoad(async () => (start ? call(() => api.GET("/api/v1/market/epochs/{start}/zones", { params: { path: { start } } })) : []), [start]);
  return (
    <Card title={t("zones.epochs")}>
      <div className="field">
        <label htmlFor="f-zone-epoch">{t("zones.epoch")}</label>
        <select id="f-zone-epoch" value={start} onChange={(e) => setPick(e.target.value)}>
          {cleared.map((e) => (
            <option key={e.start} value={e.start}>
              {fmtTime(e.start)}
            </option>
          ))}
        </select>
      </div>
      <Alert error={rows.error} />
      <div className="table-wrap" tabIndex={0}>
        <table aria-label={t("zones.epochs")}>
          <thead>
            <tr>
              <th scope="col">{t("zones.zone")}</th>
              <th scope="col" className="num">{t("zones.price")}</th>
              <th scope="col" className="num">{t("zones.volume")}</th>
              <th scope="col" className="num">{t("zones.gridFees")}</th>
              <th scope="col" className="num">{t("zones.losses")}</th>
              <th scope="col" className="num">{t("zones.utilityBought")}</th>
              <th scope="col" className="num">{t("zones.utilitySold")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.data?.map((z) => (
              <tr key={z.zone} data-testid="epoch-zone">
                <td>{z.name}</td>
                <td className="num">{z.price ?? "—"}</td>
                <td className="num">{fmtWh(z.volume)}</td>
                <td className="num">{z.grid_fees}</td>
                <td className="num">{fmtWh(z.losses)}</td>
                <td className="num">{fmtWh(z.utility_bought)}</td>
                <td className="num">{fmtWh(z.utility_sold)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}
