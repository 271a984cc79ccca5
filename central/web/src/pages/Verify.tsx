import { useEffect, useState } from "react";
import { api, call } from "../api/client";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { Alert, Card, Field, Form, useAction } from "../ui";

export default function Verify() {
  const { t } = useI18n();
  const fromLink = new URL(window.location.href).searchParams.get("token") ?? "";
  const [token, setToken] = useState(fromLink);
  const act = useAction();
  const verify = (value: string) =>
    act.run(async () => {
      await call(() => api.POST("/api/v1/auth/verify-email", { body: { token: value } }));
      return t("auth.verify.done");
    });
  useEffect(() => {
    if (fromLink) void verify(fromLink);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <>
      <h1>{t("auth.verify.title")}</h1>
      <Card title={t("auth.verify.title")}>
        <Form label={t("auth.verify.title")} onSubmit={() => verify(token)}>
          <Field label={t("auth.verify.token")} name="token" value={token} onChange={setToken} autoComplete="one-time-code" />
          <Alert error={act.error} done={act.done} />
          <button type="submit" disabled={act.busy}>
            {t("auth.verify.submit")}
          </button>
        </Form>
        {act.done ? <Link href="/app/login">{t("nav.login")}</Link> : null}
      </Card>
    </>
  );
}
