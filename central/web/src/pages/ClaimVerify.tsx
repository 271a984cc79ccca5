// Public, shareable: /app/claim#<claim> (no login). Checks a matching claim with central's public verify endpoint;
// a claim file can also be pasted.
import { useEffect, useState } from "react";
import { api, call } from "../api/client";
import { claimFromFragment, claimFromText, type SignedClaim } from "../claim";
import { useI18n } from "../i18n";
import { Alert, Card, Form, fmtWh, useAction } from "../ui";

function num(v: unknown): number | null {
  return typeof v === "number" ? v : null;
}

export default function ClaimVerify() {
  const { t } = useI18n();
  const [claim, setClaim] = useState<SignedClaim | null>(() => claimFromFragment(window.location.hash));
  const [text, setText] = useState("");
  const [valid, setValid] = useState<boolean | null>(null);
  const act = useAction();
  useEffect(() => {
    if (!claim) return;
    setValid(null);
    void act.run(async () => {
      const out = await call(() => api.POST("/api/v1/market/matching/verify", { body: { claim: claim.claim, signature: claim.signature } }));
      setValid(out.valid);
    });
  }, [claim]); // eslint-disable-line react-hooks/exhaustive-deps
  const st = claim?.claim.statement;
  const c = st && typeof st === "object" ? (st as Record<string, unknown>) : undefined;
  const issued = typeof claim?.claim.issued_at === "string" ? claim.claim.issued_at : null;
  const month = typeof c?.month === "string" ? c.month : null;
  const imp = num(c?.import_wh);
  const matched = num(c?.matched_wh);
  const share = num(c?.share_bp);
  return (
    <>
      <h1>{t("claim.title")}</h1>
      <p className="muted">{t("claim.help")}</p>
      <Alert error={act.error} />
      {claim ? (
        <Card title={t("claim.result")}>
          {valid === null ? <p>{t("app.loading")}</p> : (
            <p className={valid ? "ok-text" : "bad-text"} data-testid="claim-validity">
              {valid ? t("claim.valid") : t("claim.invalid")}
            </p>
          )}
          <ul className="plain">
            {month ? <li>{t("match.month")}: <span data-testid="claim-month">{month}</span></li> : null}
            {issued ? <li>{t("claim.issued")}: <span data-testid="claim-issued">{issued}</span></li> : null}
            {imp != null ? <li>{t("match.import")}: {fmtWh(imp)}</li> : null}
            {matched != null ? <li>{t("match.matched")}: {fmtWh(matched)}</li> : null}
            {share != null ? <li>{t("match.share")}: {(share / 100).toFixed(2)} %</li> : null}
          </ul>
          <button type="button" className="secondary" onClick={() => window.print()}>
            {t("validate.print")}
          </button>
        </Card>
      ) : null}
      <Card title={t("claim.paste")}>
        <Form
          label={t("claim.paste")}
          onSubmit={() => {
            const parsed = claimFromText(text);
            if (!parsed) act.setError(t("claim.unreadable"));
            else setClaim(parsed);
          }}
        >
          <div className="field">
            <label htmlFor="f-claim-text">{t("claim.file")}</label>
            <textarea id="f-claim-text" rows={6} value={text} onChange={(e) => setText(e.target.value)} required />
          </div>
          <button type="submit">{t("claim.check")}</button>
        </Form>
      </Card>
    </>
  );
}
