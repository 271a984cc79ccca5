import { Suspense, lazy, useEffect, useMemo, useState } from "react";
import { api, call, idem } from "../api/client";
import { useI18n } from "../i18n";
import { ActionButton, Alert, Card, Field, Form, SelectField, fmtTime, fmtWh, short, useAction, useLoad } from "../ui";
import { orderSetHash } from "../verify";
import { WalletConnect, Wallets, useSigner } from "../wallet";
import { EpochZonesCard, ZonesCard } from "./Zones";

const Chart = lazy(() => import("../Chart"));

function Countdown({ end, onEnd }: { end: string; onEnd: () => void }) {
  const { t } = useI18n();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, []);
  const left = Math.max(0, Math.round((new Date(end).getTime() - now) / 1000));
  useEffect(() => {
    if (left === 0) {
      const id = setTimeout(onEnd, 1000);
      return () => clearTimeout(id);
    }
  }, [left, onEnd]);
  const time = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  return (
    <p className="alert ok" role="timer" aria-live="off">
      {t("trade.epoch", { time })}
    </p>
  );
}

function Escrow({ onChange }: { onChange: () => void }) {
  const { t } = useI18n();
  const signer = useSigner();
  const [asset, setAsset] = useState<"energy" | "quote">("quote");
  const [amount, setAmount] = useState("");
  const act = useAction();
  return (
    <Card title={`${t("trade.deposit")} / ${t("trade.withdraw")}`}>
      <WalletConnect />
      <SelectField
        label={t("trade.asset")}
        name="asset"
        value={asset}
        onChange={setAsset}
        options={[
          ["quote", t("dash.quote")],
          ["energy", t("dash.energy")],
        ]}
      />
      <Field label={t("trade.amount")} name="amount" type="number" min={1} value={amount} onChange={setAmount} />
      <div className="row">
        <ActionButton
          action={act}
          disabled={!signer.connected}
          run={async () => {
            const req = await call(() => api.POST("/api/v1/market/deposits", { body: { asset, amount: Number(amount) } }));
            const signed = await signer.signB64(req.transaction);
            await call(() => api.POST("/api/v1/market/deposits/{transfer_id}/submit", { params: { path: { transfer_id: req.id } }, body: { transaction: signed } }));
            onChange();
            return t("trade.depositDone");
          }}
        >
          {t("trade.deposit")}
        </ActionButton>
        <ActionButton
          action={act}
          className="secondary"
          run={async () => {
            await call(() => api.POST("/api/v1/market/withdrawals", { body: { asset, amount: Number(amount) }, params: { header: idem() } }));
            onChange();
            return t("trade.withdrawDone");
          }}
        >
          {t("trade.withdraw")}
        </ActionButton>
      </div>
      <Alert error={act.error} done={act.done} />
    </Card>
  );
}

function VerifyEpoch({ start, expected }: { start: string; expected: string | null | undefined }) {
  const { t } = useI18n();
  const act = useAction();
  return (
    <>
      <button
        type="button"
        className="linkish"
        onClick={() =>
          act.run(async () => {
            const set = await call(() => api.GET("/api/v1/market/epochs/{start}/orders", { params: { path: { start } } }));
            const mine = await orderSetHash(set.orders, set.zone_params);
            if (mine !== set.order_set_hash || (expected && expected !== mine)) throw new Error("mismatch");
            return t("trade.verify.ok", { hash: short(mine) });
          })
        }
      >
        {t("trade.verify")}
      </button>
      {act.error ? <span className="bad-text">{t("trade.verify.bad")}</span> : null}
      {act.done ? <span className="ok-text" data-testid="verify-ok"> {act.done}</span> : null}
    </>
  );
}

export default function Trading() {
  const { t } = useI18n();
  const book = useLoad(() => call(() => api.GET("/api/v1/market/book")));
  const balances = useLoad(() => call(() => api.GET("/api/v1/market/balances")));
  const orders = useLoad(() => call(() => api.GET("/api/v1/market/orders", { params: { query: { limit: 20 } } })));
  const fills = useLoad(() => call(() => api.GET("/api/v1/market/fills", { params: { query: { limit: 20 } } })));
  const epochs = useLoad(() => call(() => api.GET("/api/v1/market/epochs", { params: { query: { limit: 48 } } })));
  const [side, setSide] = useState<"buy" | "sell">("buy");
  const [qty, setQty] = useState("");
  const [price, setPrice] = useState("");
  const place = useAction();
  const cancel = useAction();
  const reloadAll = () => {
    book.reload();
    balances.reload();
    orders.reload();
  };
  const depth = useMemo(() => {
    const b = book.data;
    if (!b) return null;
    const levels = [...b.bids.map((l) => ({ p: l.price, bid: l.qty, ask: 0 })), ...b.asks.map((l) => ({ p: l.price, bid: 0, ask: l.qty }))].sort((a, c) => a.p - c.p);
    const bidCum: number[] = [];
    const askCum: number[] = [];
    let acc = 0;
    for (let i = levels.length - 1; i >= 0; i--) bidCum[i] = acc += levels[i].bid;
    acc = 0;
    levels.forEach((l, i) => (askCum[i] = acc += l.ask));
    return { x: levels.map((l) => l.p), ys: [bidCum, askCum] };
  }, [book.data]);
  const priceChart = useMemo(() => {
    const es = (epochs.data ?? []).filter((e) => e.price != null).reverse();
    return { x: es.map((e) => new Date(e.start).getTime() / 1000), ys: [es.map((e) => e.price as number)] };
  }, [epochs.data]);
  const need = side === "buy" ? Math.ceil((Number(qty) * Number(price)) / 1000) : Number(qty);
  const have = balances.data?.find((b) => b.asset === (side === "buy" ? "quote" : "energy"))?.available ?? 0;
  return (
    <Wallets>
      <h1>{t("trade.title")}</h1>
      {book.data ? <Countdown end={book.data.epoch_end} onEnd={book.reload} /> : null}
      <Alert error={book.error} />
      <div className="grid">
        <Card title={t("trade.place")}>
          <Form
            label={t("trade.place")}
            onSubmit={() =>
              place.run(async () => {
                if (need > have) {
                  place.setError(t("trade.escrowShort", { have, need }));
                  return;
                }
                await call(() => api.POST("/api/v1/market/orders", { body: { side, qty: Number(qty), price: Number(price), tif: "epoch" }, params: { header: idem() } }));
                reloadAll();
              })
            }
          >
            <SelectField
              label={t("trade.side")}
              name="side"
              value={side}
              onChange={setSide}
              options={[
                ["buy", t("trade.buy")],
                ["sell", t("trade.sell")],
              ]}
            />
            <Field label={t("trade.qty")} name="qty" type="number" min={1} value={qty} onChange={setQty} />
            <Field label={t("trade.price")} name="price" type="number" min={1} value={price} onChange={setPrice} />
            <Alert error={place.error} />
            <button type="submit" disabled={place.busy}>
              {t("trade.submit")}
            </button>
          </Form>
        </Card>
        <Escrow onChange={reloadAll} />
        <Card title={t("trade.book")}>
          {depth && depth.x.length > 1 ? (
            <Suspense fallback={<p>{t("app.loading")}</p>}>
              <Chart time={false} x={depth.x} ys={depth.ys} series={[{ label: t("trade.bids"), color: "#0a6b2f" }, { label: t("trade.asks"), color: "#a4141b" }]} title={t("trade.book")} height={200} />
            </Suspense>
          ) : null}
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("trade.bids")}</th>
                  <th scope="col">{t("trade.asks")}</th>
                </tr>
              </thead>
              <tbody>
                {Array.from({ length: Math.max(book.data?.bids.length ?? 0, book.data?.asks.length ?? 0) }, (_, i) => (
                  <tr key={i}>
                    <td>{book.data?.bids[i] ? `${fmtWh(book.data.bids[i].qty)} @ ${book.data.bids[i].price}` : ""}</td>
                    <td>{book.data?.asks[i] ? `${fmtWh(book.data.asks[i].qty)} @ ${book.data.asks[i].price}` : ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Card>
      </div>
      <div className="grid">
        <Card title={t("trade.myOrders")}>
          <Alert error={orders.error ?? cancel.error} />
          <ul className="plain">
            {orders.data?.map((o) => (
              <li key={o.id} data-testid="order">
                {o.side} {fmtWh(o.qty)} @ {o.price} · {o.status} · {fmtWh(o.filled)}{" "}
                {o.status === "open" ? (
                  <button
                    type="button"
                    className="secondary"
                    onClick={() =>
                      cancel.run(async () => {
                        await call(() => api.DELETE("/api/v1/market/orders/{order_id}", { params: { path: { order_id: String(o.id) }, header: idem() } }));
                        reloadAll();
                      })
                    }
                  >
                    {t("trade.cancel")} #{o.id}
                  </button>
                ) : null}
              </li>
            ))}
          </ul>
        </Card>
        <Card title={t("trade.fills")}>
          <ul className="plain">
            {fills.data?.map((f) => (
              <li key={f.id} data-testid="fill">
                {f.side} {fmtWh(f.qty)} @ {f.price} · {f.status} · {t("trade.fill.gridFee", { fee: f.grid_fee ?? 0 })} · {t("trade.fill.loss", { loss: fmtWh(f.loss ?? 0) })}
                {f.utility ? ` · ${t("trade.fill.utility")}` : ` · ${t("trade.fill.peer")}`} {f.signature ? <span className="mono">{short(f.signature)}</span> : null}
              </li>
            ))}
          </ul>
        </Card>
      </div>
      <Card title={t("trade.epochs")}>
        {priceChart.x.length > 1 ? (
          <Suspense fallback={<p>{t("app.loading")}</p>}>
            <Chart x={priceChart.x} ys={priceChart.ys} series={[{ label: t("trade.price"), color: "#0b5cad" }]} title={t("trade.epochs")} height={200} />
          </Suspense>
        ) : null}
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("common.when")}</th>
                <th scope="col">{t("common.status")}</th>
                <th scope="col" className="num">{t("trade.price")}</th>
                <th scope="col" className="num">{t("trade.qty")}</th>
                <th scope="col"></th>
              </tr>
            </thead>
            <tbody>
              {epochs.data?.slice(0, 12).map((e) => (
                <tr key={e.start}>
                  <td>{fmtTime(e.start)}</td>
                  <td>{e.status}</td>
                  <td className="num">{e.price ?? "—"}</td>
                  <td className="num">{fmtWh(e.volume)}</td>
                  <td>{e.order_set_hash ? <VerifyEpoch start={e.start} expected={e.order_set_hash} /> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
      <div className="grid">
        <ZonesCard />
        <EpochZonesCard epochs={epochs.data ?? []} />
      </div>
    </Wallets>
  );
}
