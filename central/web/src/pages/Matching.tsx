// Hourly consumption matching: redeem energy tokens against my metered import of one hour (my wallet signs the burn
// + memo), my statement per hour (chart: import vs matched) and the month's share, CSV, and the signed claim.
import { Suspense, lazy, useMemo, useState } from "react";
import { api, call } from "../api/client";
import { claimToFragment } from "../claim";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { ActionButton, Alert, Card, Field, Form, SelectField, download, fmtTime, fmtWh, useAction, useLoad } from "../ui";
import { WalletConnect, Wallets, useSigner } from "../wallet";

const Chart = lazy(() => import("../Chart"));

const thisMonth = () => new Date().toISOString().slice(0, 7);
const thisHour = () => {
  const d = new Date();
  d.setUTCMinutes(0, 0, 0);
  d.setUTCHours(d.getUTCHours() - 1);
  return d.toISOString().slice(0, 13);
};

function Redeem({ onDone }: { onDone: () => void }) {
  const { t } = useI18n();
  const signer = useSigner();
  const meters = useLoad(() => call(() => api.GET("/api/v1/meters")));
  const [meter, setMeter] = useState("");
  const [hour, setHour] = useState(thisHour());
  const [amount, setAmount] = useState("");
  const act = useAction();
  const serial = meter || meters.data?.[0]?.serial || "";
  return (
    <Card title={t("match.redeem")}>
      <p className="muted">{t("match.redeemHelp")}</p>
      <WalletConnect />
      <Form
        label={t("match.redeem")}
        onSubmit={() =>
          act.run(async () => {
            const req = await call(() => api.POST("/api/v1/market/redemptions", { body: { meter: serial, hour: `${hour}:00:00Z`, amount: Number(amount) } }));
            if (!req.transaction) throw new Error("no transaction");
            const signed = await signer.signB64(req.transaction);
            const out = await call(() => api.POST("/api/v1/market/redemptions/{redemption_id}/submit", { params: { path: { redemption_id: req.id } }, body: { transaction: signed } }));
            onDone();
            return t("match.redeemed", { amount: fmtWh(out.amount), status: out.status });
          })
        }
      >
        <SelectField label={t("meters.serial")} name="match-meter" value={serial} onChange={setMeter} options={meters.data?.map((m) => [m.serial, m.serial] as const) ?? []} />
        <div className="field">
          <label htmlFor="f-match-hour">{t("match.hour")}</label>
          <input id="f-match-hour" type="datetime-local" step={3600} value={`${hour}:00`} required onChange={(e) => setHour(e.target.value.slice(0, 13))} />
        </div>
        <Field label={t("match.amount")} name="match-amount" type="number" min={1} value={amount} onChange={setAmount} />
        <Alert error={act.error ?? meters.error} done={act.done} />
        <button type="submit" disabled={act.busy || !signer.connected || !serial}>
          {t("match.redeemSubmit")}
        </button>
      </Form>
    </Card>
  );
}

export default function Matching() {
  const { t } = useI18n();
  const [month, setMonth] = useState(thisMonth());
  const st = useLoad(() => call(() => api.GET("/api/v1/market/matching/statement", { params: { query: { month } } })), [month]);
  const act = useAction();
  const [share, setShare] = useState<string | null>(null);
  const chart = useMemo(() => {
    const byHour = new Map<number, [number, number]>();
    for (const h of st.data?.hours ?? []) {
      const x = new Date(h.hour).getTime() / 1000;
      const v = byHour.get(x) ?? [0, 0];
      byHour.set(x, [v[0] + h.import_wh, v[1] + h.matched_wh]);
    }
    const xs = [...byHour.keys()].sort((a, b) => a - b);
    return { x: xs, ys: [xs.map((x) => byHour.get(x)![0]), xs.map((x) => byHour.get(x)![1])] };
  }, [st.data]);
  const series = useMemo(() => [{ label: t("match.import"), color: "#6b7785", bars: true }, { label: t("match.matched"), color: "#0a6b2f", bars: true }], [t]);
  const d = st.data;
  return (
    <Wallets>
      <h1>{t("match.title")}</h1>
      <div className="grid">
        <Redeem onDone={st.reload} />
        <Card title={t("match.statement")}>
          <div className="field">
            <label htmlFor="f-match-month">{t("match.month")}</label>
            <input id="f-match-month" type="month" value={month} required onChange={(e) => e.target.value && setMonth(e.target.value)} />
          </div>
          <Alert error={st.error} />
          {d ? (
            <div className="stat" data-testid="match-totals">
              <div>
                {t("match.import")}
                <b>{fmtWh(d.import_wh)}</b>
              </div>
              <div>
                {t("match.matched")}
                <b>{fmtWh(d.matched_wh)}</b>
              </div>
              <div>
                {t("match.share")}
                <b data-testid="match-share">{(d.share_bp / 100).toFixed(2)} %</b>
              </div>
            </div>
          ) : null}
          <div className="row">
            <ActionButton
              action={act}
              className="secondary"
              run={async () => {
                const csv = await call(() => api.GET("/api/v1/market/matching/statement.csv", { params: { query: { month } }, parseAs: "text" }));
                download(`matching-${month}.csv`, String(csv));
              }}
            >
              {t("match.csv")}
            </ActionButton>
            <ActionButton
              action={act}
              className="secondary"
              run={async () => {
                const c = await call(() => api.GET("/api/v1/market/matching/claim", { params: { query: { month } } }));
                download(`matching-claim-${month}.json`, JSON.stringify(c, null, 2), "application/json");
                setShare(`/app/claim#${claimToFragment(c)}`);
                return t("match.claimDone");
              }}
            >
              {t("match.claim")}
            </ActionButton>
          </div>
          <Alert error={act.error} done={act.done} />
          {share ? (
            <p>
              <Link href={share} data-testid="claim-link">
                {t("match.claimLink")}
              </Link>
            </p>
          ) : null}
        </Card>
      </div>
      <Card title={t("match.hours")}>
        {chart.x.length > 0 ? (
          <Suspense fallback={<p>{t("app.loading")}</p>}>
            <Chart x={chart.x} ys={chart.ys} series={series} title={t("match.hours")} height={220} />
          </Suspense>
        ) : null}
        <div className="table-wrap" tabIndex={0}>
          <table aria-label={t("match.hours")}>
            <thead>
              <tr>
                <th scope="col">{t("match.hour")}</th>
                <th scope="col">{t("meters.serial")}</th>
                <th scope="col" className="num">{t("match.import")}</th>
                <th scope="col" className="num">{t("match.matched")}</th>
                <th scope="col" className="num">{t("match.share")}</th>
              </tr>
            </thead>
            <tbody>
              {d?.hours.length === 0 ? (
                <tr>
                  <td colSpan={5}>{t("common.none")}</td>
                </tr>
              ) : null}
              {d?.hours.map((h) => (
                <tr key={`${h.meter}-${h.hour}`} data-testid="match-hour">
                  <td>{fmtTime(h.hour)}</td>
                  <td>{h.meter}</td>
                  <td className="num">{fmtWh(h.import_wh)}</td>
                  <td className="num">{fmtWh(h.matched_wh)}</td>
                  <td className="num">{(h.share_bp / 100).toFixed(2)} %</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
    </Wallets>
  );
}
