// Standing orders: "sell my minted energy every epoch at no less than X", "buy up to my usual consumption at no more
// than Y", with daily limits; each epoch they place real orders (or record why they skipped). Pause, resume, delete.
import { useState } from "react";
import { api, call, type Schemas } from "../api/client";
import { useI18n } from "../i18n";
import { Alert, Card, Field, Form, SelectField, fmtTime, fmtWh, useAction, useLoad } from "../ui";

const optional = (v: string) => (v.trim() === "" ? null : Number(v));

function Runs({ id }: { id: number }) {
  const { t } = useI18n();
  const runs = useLoad(() => call(() => api.GET("/api/v1/market/standing/{standing_id}/runs", { params: { path: { standing_id: String(id) }, query: { limit: 10 } } })));
  return (
    <>
      <Alert error={runs.error} />
      <ul className="plain" aria-label={t("standing.runs")}>
        {runs.data?.length === 0 ? <li>{t("standing.noRuns")}</li> : null}
        {runs.data?.map((r) => (
          <li key={r.epoch_start} data-testid="run">
            {fmtTime(r.epoch_start)} ·{" "}
            {r.outcome === "placed"
              ? t("standing.placed", { qty: fmtWh(r.qty), order: r.order_id ?? "—" })
              : t("standing.skipped", { reason: r.reason ?? r.outcome })}
          </li>
        ))}
      </ul>
    </>
  );
}

function Row({ s, onChange }: { s: Schemas["StandingView"]; onChange: () => void }) {
  const { t } = useI18n();
  const act = useAction();
  const [showRuns, setShowRuns] = useState(false);
  const path = { params: { path: { standing_id: String(s.id) } } };
  const describe = s.side === "sell" ? t("standing.sellAt", { price: s.price }) : t("standing.buyAt", { price: s.price });
  return (
    <li data-testid="standing">
      <p>
        <b>#{s.id}</b> {describe} · <span data-testid="standing-status">{t("standing.state", { status: s.status })}</span>
        {s.max_qty_wh != null ? ` · ${t("standing.maxQty")}: ${fmtWh(s.max_qty_wh)}` : ""}
        {s.daily_energy_wh != null ? ` · ${t("standing.dailyEnergy")}: ${fmtWh(s.daily_energy_wh)}` : ""}
        {s.daily_spend != null ? ` · ${t("standing.dailySpend")}: ${s.daily_spend}` : ""}
      </p>
      {s.last_epoch ? (
        <p className="muted">
          {t("standing.last", { when: fmtTime(s.last_epoch), outcome: s.last_outcome ?? "—" })}
          {s.last_reason ? ` (${s.last_reason})` : ""}
        </p>
      ) : null}
      <div className="row">
        {s.status === "active" ? (
          <button type="button" className="secondary" disabled={act.busy} onClick={() => act.run(async () => { await call(() => api.POST("/api/v1/market/standing/{standing_id}/pause", path)); onChange(); })}>
            {t("standing.pause")} #{s.id}
          </button>
        ) : (
          <button type="button" className="secondary" disabled={act.busy} onClick={() => act.run(async () => { await call(() => api.POST("/api/v1/market/standing/{standing_id}/resume", path)); onChange(); })}>
            {t("standing.resume")} #{s.id}
          </button>
        )}
        <button type="button" className="secondary" onClick={() => setShowRuns((v) => !v)} aria-expanded={showRuns}>
          {t("standing.runs")} #{s.id}
        </button>
        <button type="button" className="secondary" disabled={act.busy} onClick={() => act.run(async () => { await call(() => api.DELETE("/api/v1/market/standing/{standing_id}", path)); onChange(); })}>
          {t("standing.delete")} #{s.id}
        </button>
      </div>
      <Alert error={act.error} />
      {showRuns ? <Runs id={s.id} /> : null}
    </li>
  );
}

export default function Standing() {
  const { t } = useI18n();
  const list = useLoad(() => call(() => api.GET("/api/v1/market/standing")));
  const [side, setSide] = useState<"buy" | "sell">("sell");
  const [price, setPrice] = useState("");
  const [maxQty, setMaxQty] = useState("");
  const [dailyEnergy, setDailyEnergy] = useState("");
  const [dailySpend, setDailySpend] = useState("");
  const create = useAction();
  return (
    <>
      <h1>{t("standing.title")}</h1>
      <div className="grid">
        <Card title={t("standing.create")}>
          <p className="muted">{side === "sell" ? t("standing.sellHelp") : t("standing.buyHelp")}</p>
          <Form
            label={t("standing.create")}
            onSubmit={() =>
              create.run(async () => {
                await call(() =>
                  api.POST("/api/v1/market/standing", {
                    body: { side, price: Number(price), max_qty_wh: optional(maxQty), daily_energy_wh: optional(dailyEnergy), daily_spend: side === "buy" ? optional(dailySpend) : null },
                  }),
                );
                list.reload();
                return t("standing.created");
              })
            }
          >
            <SelectField
              label={t("trade.side")}
              name="standing-side"
              value={side}
              onChange={setSide}
              options={[
                ["sell", t("standing.side.sell")],
                ["buy", t("standing.side.buy")],
              ]}
            />
            <Field label={side === "sell" ? t("standing.floor") : t("standing.ceiling")} name="standing-price" type="number" min={1} value={price} onChange={setPrice} />
            <Field label={t("standing.maxQty")} name="standing-max" type="number" min={1} value={maxQty} onChange={setMaxQty} required={false} />
            <Field label={t("standing.dailyEnergy")} name="standing-daily" type="number" min={1} value={dailyEnergy} onChange={setDailyEnergy} required={false} />
            {side === "buy" ? <Field label={t("standing.dailySpend")} name="standing-spend" type="number" min={1} value={dailySpend} onChange={setDailySpend} required={false} /> : null}
            <Alert error={create.error} done={create.done} />
            <button type="submit" disabled={create.busy}>
              {t("standing.submit")}
            </button>
          </Form>
        </Card>
        <Card title={t("standing.mine")}>
          <Alert error={list.error} />
          <ul className="plain" aria-label={t("standing.mine")}>
            {list.data?.length === 0 ? <li>{t("common.none")}</li> : null}
            {list.data?.map((s) => <Row key={s.id} s={s} onChange={list.reload} />)}
          </ul>
        </Card>
      </div>
    </>
  );
}
