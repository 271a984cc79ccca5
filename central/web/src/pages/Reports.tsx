// My market report for a period: energy sold/bought, prices, grid fees, losses, utility fallback, platform fees and
// escrow movements (reconciled to the chain by central), with CSV and JSON downloads.
import { useState } from "react";
import { api, call } from "../api/client";
import { useI18n } from "../i18n";
import { Alert, Card, download, fmtWh, useAction, useLoad } from "../ui";

const day = (d: Date) => d.toISOString().slice(0, 10);
function monthRange(offset: number): [string, string] {
  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset + 1, 1));
  return [day(start), day(end)];
}

export default function Reports() {
  const { t } = useI18n();
  const [[start, end], setRange] = useState<[string, string]>(monthRange(0));
  const query = { start: `${start}T00:00:00Z`, end: `${end}T00:00:00Z` };
  const rep = useLoad(() => call(() => api.GET("/api/v1/market/report", { params: { query } })), [start, end]);
  const act = useAction();
  const tot = rep.data?.totals;
  const rows: [string, string][] = tot
    ? [
        [t("report.sold"), fmtWh(tot.sold_wh)],
        [t("report.bought"), fmtWh(tot.bought_wh)],
        [t("report.soldValue"), String(tot.sold_value)],
        [t("report.boughtValue"), String(tot.bought_value)],
        [t("report.avgSell"), tot.avg_sell_price == null ? "—" : String(tot.avg_sell_price)],
        [t("report.avgBuy"), tot.avg_buy_price == null ? "—" : String(tot.avg_buy_price)],
        [t("report.gridFees"), String(tot.grid_fees)],
        [t("report.losses"), fmtWh(tot.losses_wh)],
        [t("report.utilitySold"), fmtWh(tot.utility_sold_wh)],
        [t("report.utilityBought"), fmtWh(tot.utility_bought_wh)],
        [t("report.platformFees"), String(tot.platform_fees)],
        [t("report.quoteIn"), String(tot.quote_in)],
        [t("report.quoteOut"), String(tot.quote_out)],
        [t("report.trades"), String(tot.trades)],
        [t("report.pending"), String(tot.pending)],
      ]
    : [];
  return (
    <>
      <h1>{t("report.title")}</h1>
      <div className="grid">
        <Card title={t("report.period")}>
          <div className="row">
            <button type="button" className="secondary" onClick={() => setRange(monthRange(0))}>
              {t("report.thisMonth")}
            </button>
            <button type="button" className="secondary" onClick={() => setRange(monthRange(-1))}>
              {t("report.lastMonth")}
            </button>
          </div>
          <div className="field">
            <label htmlFor="f-report-start">{t("report.start")}</label>
            <input id="f-report-start" type="date" value={start} required onChange={(e) => e.target.value && setRange([e.target.value, end])} />
          </div>
          <div className="field">
            <label htmlFor="f-report-end">{t("report.end")}</label>
            <input id="f-report-end" type="date" value={end} required onChange={(e) => e.target.value && setRange([start, e.target.value])} />
          </div>
          <div className="row">
            <button
              type="button"
              className="secondary"
              disabled={act.busy}
              onClick={() =>
                act.run(async () => {
                  const csv = await call(() => api.GET("/api/v1/market/report.csv", { params: { query }, parseAs: "text" }));
                  download(`report-${start}-${end}.csv`, String(csv));
                })
              }
            >
              {t("report.csv")}
            </button>
            <button type="button" className="secondary" disabled={!rep.data} onClick={() => rep.data && download(`report-${start}-${end}.json`, JSON.stringify(rep.data, null, 2), "application/json")}>
              {t("report.json")}
            </button>
          </div>
          <Alert error={act.error} />
        </Card>
        <Card title={t("report.totals")}>
          <Alert error={rep.error} />
          <div className="table-wrap" tabIndex={0}>
            <table aria-label={t("report.totals")}>
              <tbody>
                {rows.map(([k, v]) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    <td className="num">{v}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Card>
      </div>
      <Card title={t("report.lines")}>
        <div className="table-wrap" tabIndex={0}>
          <table aria-label={t("report.lines")}>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">{t("trade.side")}</th>
                <th scope="col" className="num">{t("trade.qty")}</th>
                <th scope="col" className="num">{t("zones.price")}</th>
                <th scope="col" className="num">{t("report.gridFees")}</th>
                <th scope="col" className="num">{t("report.losses")}</th>
                <th scope="col">{t("report.counterparty")}</th>
                <th scope="col">{t("common.status")}</th>
              </tr>
            </thead>
            <tbody>
              {rep.data?.lines.length === 0 ? (
                <tr>
                  <td colSpan={8}>{t("common.none")}</td>
                </tr>
              ) : null}
              {rep.data?.lines.map((l) => (
                <tr key={`${l.trade_id}-${l.side}`} data-testid="report-line">
                  <td>{l.trade_id}</td>
                  <td>{l.side}</td>
                  <td className="num">{fmtWh(l.qty)}</td>
                  <td className="num">{l.price}</td>
                  <td className="num">{l.grid_fee}</td>
                  <td className="num">{fmtWh(l.loss_wh)}</td>
                  <td>{l.utility ? t("trade.fill.utility") : t("trade.fill.peer")}</td>
                  <td>{l.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
    </>
  );
}
