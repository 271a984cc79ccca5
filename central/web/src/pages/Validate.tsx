import { api, call } from "../api/client";
import { useI18n } from "../i18n";
import { Alert, Card, fmtTime, fmtWh, useLoad } from "../ui";

// Public, shareable, printable: /app/validate?certificate_id=… (or ?mint=…). No login needed.
export default function Validate() {
  const { t } = useI18n();
  const q = new URL(window.location.href).searchParams;
  const certificate_id = q.get("certificate_id") ?? undefined;
  const mint = q.get("mint") ?? undefined;
  const v = useLoad(() => call(() => api.GET("/api/v1/certificates/validate", { params: { query: { certificate_id, mint } } })));
  const retirements = useLoad(async () =>
    certificate_id ? call(() => api.GET("/api/v1/certificates/{certificate_id}/retirements", { params: { path: { certificate_id } } })) : [],
  );
  const d = v.data;
  return (
    <>
      <h1>{t("validate.title")}</h1>
      <Alert error={v.error} />
      {d ? (
        <Card title={d.mint}>
          <p className={d.valid ? "ok-text" : "bad-text"} data-testid="validity">
            {d.valid ? t("validate.valid") : `${t("validate.invalid")}: ${d.problems.join("; ")}`}
          </p>
          <ul className="plain">
            <li>{d.status}</li>
            {d.supply_wh != null ? <li>{fmtWh(d.supply_wh)}</li> : null}
            {d.retired_wh != null ? <li>{t("cert.retiredWh", { wh: fmtWh(d.retired_wh) })}</li> : null}
            {d.expires_at ? <li>{fmtTime(d.expires_at)}</li> : null}
          </ul>
          <ul className="plain" aria-label="retirements">
            {retirements.data?.map((r) => (
              <li key={r.signature} data-testid="retirement">
                {fmtWh(r.amount_wh)} · <span data-testid="beneficiary">{r.beneficiary}</span> · <span data-testid="purpose">{r.purpose}</span>
              </li>
            ))}
          </ul>
          <button type="button" className="secondary" onClick={() => window.print()}>
            {t("validate.print")}
          </button>
        </Card>
      ) : null}
    </>
  );
}
