import { useState } from "react";
import { api, call } from "../api/client";
import { useI18n } from "../i18n";
import { Alert, Card, Field, Form, useAction } from "../ui";

export default function Reset() {
  const { t } = useI18n();
  const [email, setEmail] = useState("");
  const [token, setToken] = useState(new URL(window.location.href).searchParams.get("token") ?? "");
  const [password, setPassword] = useState("");
  const req = useAction();
  const conf = useAction();
  return (
    <>
      <h1>{t("auth.reset.title")}</h1>
      <div className="grid">
        <Card title={t("auth.reset.request")}>
          <Form
            label={t("auth.reset.request")}
            onSubmit={() =>
              req.run(async () => {
                await call(() => api.POST("/api/v1/auth/password-reset/request", { body: { email } }));
                return t("auth.reset.sent");
              })
            }
          >
            <Field label={t("auth.email")} name="email" type="email" value={email} onChange={setEmail} autoComplete="email" />
            <Alert error={req.error} done={req.done} />
            <button type="submit" disabled={req.busy}>
              {t("auth.reset.request")}
            </button>
          </Form>
        </Card>
        <Card title={t("auth.reset.confirm")}>
          <Form
            label={t("auth.reset.confirm")}
            onSubmit={() =>
              conf.run(async () => {
                await call(() => api.POST("/api/v1/auth/password-reset/confirm", { body: { token, new_password: password } }));
                return t("auth.reset.done");
              })
            }
          >
            <Field label={t("auth.reset.token")} name="reset-token" value={token} onChange={setToken} autoComplete="one-time-code" />
            <Field label={t("auth.newPassword")} name="new-password" type="password" value={password} onChange={setPassword} autoComplete="new-password" />
            <Alert error={conf.error} done={conf.done} />
            <button type="submit" disabled={conf.busy}>
              {t("auth.reset.confirm")}
            </button>
          </Form>
        </Card>
      </div>
    </>
  );
}
