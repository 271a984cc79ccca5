import { useState } from "react";
import { api, call, idem, type Schemas } from "../api/client";
import { useAuth } from "../auth";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { Alert, Card, Field, Form, fmtTime, fmtWh, short, useAction, useLoad } from "../ui";
import { WalletConnect, Wallets, useSigner } from "../wallet";

/** Certificate times are whole seconds (central/certificates/metadata.py). */
const wholeSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

function HolderActions({ cert, onDone }: { cert: Schemas["CertificateOut"]; onDone: () => void }) {
  const { t } = useI18n();
  const signer = useSigner();
  const [to, setTo] = useState("");
  const [amount, setAmount] = useState("");
  const [beneficiary, setBeneficiary] = useState("");
  const [purpose, setPurpose] = useState("");
  const act = useAction();
  const submit = async (req: Schemas["TxRequestOut"]) => {
    const signed = await signer.signB64(req.transaction);
    const out = await call(() => api.POST("/api/v1/certificates/requests/{request_id}/submit", { params: { path: { request_id: req.request_id } }, body: { transaction: signed } }));
    onDone();
    return t("cert.done", { sig: short(out.signature) });
  };
  const path = { certificate_id: cert.id };
  return (
    <div className="grid">
      <Form
        label={`${t("cert.transfer")} ${cert.meter_serial}`}
        onSubmit={() =>
          act.run(async () =>
            submit(await call(() => api.POST("/api/v1/certificates/{certificate_id}/transfer", { params: { path, header: idem() }, body: { amount_wh: Number(amount), to_wallet: to } }))),
          )
        }
      >
        <Field label={t("cert.toWallet")} name={`to-${cert.id}`} value={to} onChange={setTo} />
        <Field label={t("cert.amount")} name={`amount-${cert.id}`} type="number" min={1} value={amount} onChange={setAmount} />
        <button type="submit" disabled={act.busy || !signer.connected}>
          {t("cert.transfer")}
        </button>
      </Form>
      <Form
        label={`${t("cert.retire")} ${cert.meter_serial}`}
        onSubmit={() =>
          act.run(async () => {
            const now = new Date();
            const start = new Date(now.getTime() - 30 * 86_400_000);
            return submit(
              await call(() =>
                api.POST("/api/v1/certificates/{certificate_id}/retire", {
                  params: { path, header: idem() },
                  body: { amount_wh: Number(amount), beneficiary, purpose, consumption_start: wholeSeconds(start), consumption_end: wholeSeconds(now) },
                }),
              ),
            );
          })
        }
      >
        <Field label={t("cert.beneficiary")} name={`beneficiary-${cert.id}`} value={beneficiary} onChange={setBeneficiary} />
        <Field label={t("cert.purpose")} name={`purpose-${cert.id}`} value={purpose} onChange={setPurpose} />
        <button type="submit" disabled={act.busy || !signer.connected}>
          {t("cert.retire")}
        </button>
      </Form>
      <Alert error={act.error} done={act.done} />
    </div>
  );
}

function Issue({ onDone }: { onDone: () => void }) {
  const { t } = useI18n();
  const [meter, setMeter] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const act = useAction();
  return (
    <Card title={t("cert.issue")}>
      <Form
        label={t("cert.issue")}
        onSubmit={() =>
          act.run(async () => {
            const c = await call(() =>
              api.POST("/api/v1/certificates", { body: { meter_id: meter, period_start: new Date(from).toISOString(), period_end: new Date(to).toISOString() } }),
            );
            onDone();
            return t("cert.done", { sig: short(c.mint) });
          })
        }
      >
        <Field label={t("cert.meterId")} name="meter-id" value={meter} onChange={setMeter} />
        <Field label={t("cert.from")} name="period-start" value={from} onChange={setFrom} />
        <Field label={t("cert.to")} name="period-end" value={to} onChange={setTo} />
        <Alert error={act.error} done={act.done} />
        <button type="submit" disabled={act.busy}>
          {t("cert.issue")}
        </button>
      </Form>
    </Card>
  );
}

export default function Certificates() {
  const { t } = useI18n();
  const { user } = useAuth();
  const certs = useLoad(() => call(() => api.GET("/api/v1/certificates")));
  const authority = user?.role === "rec_authority" || user?.role === "admin";
  const holder = user?.role === "prosumer" || user?.role === "consumer";
  const revoke = useAction();
  return (
    <Wallets>
      <h1>{t("cert.title")}</h1>
      {holder ? <WalletConnect /> : null}
      {authority ? <Issue onDone={certs.reload} /> : null}
      <Alert error={certs.error ?? revoke.error} />
      {certs.data?.length === 0 ? <p>{t("cert.none")}</p> : null}
      {certs.data?.map((c) => (
        <Card key={c.id} title={`${c.meter_serial} · ${fmtWh(c.energy_wh)}`}>
          <p>
            {c.energy_source} · {fmtTime(c.period_start)} – {fmtTime(c.period_end)} · {c.status} · {t("cert.retiredWh", { wh: fmtWh(c.retired_wh) })}
          </p>
          <p className="mono">{short(c.mint, 12)}</p>
          <p>
            <Link href={`/app/validate?certificate_id=${encodeURIComponent(c.id)}`}>{t("cert.validate")}</Link>
          </p>
          {holder ? <HolderActions cert={c} onDone={certs.reload} /> : null}
          {authority && c.status !== "revoked" ? (
            <button
              type="button"
              className="secondary"
              onClick={() =>
                revoke.run(async () => {
                  await call(() => api.POST("/api/v1/certificates/{certificate_id}/revoke", { params: { path: { certificate_id: c.id } }, body: { reason: "revoked by the REC authority" } }));
                  certs.reload();
                })
              }
            >
              {t("cert.revoke")}
            </button>
          ) : null}
        </Card>
      ))}
    </Wallets>
  );
}
