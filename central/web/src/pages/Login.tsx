import { useState } from "react";
import { useAuth } from "../auth";
import { useI18n } from "../i18n";
import { Link, navigate } from "../router";
import { Alert, Card, Field, Form, useAction } from "../ui";

export default function Login() {
  const { t } = useI18n();
  const { login } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const act = useAction();
  const next = new URL(window.location.href).searchParams.get("next");
  return (
    <>
      <h1>{t("auth.login.title")}</h1>
      <Card title={t("auth.login.title")}>
        <Form
          label={t("auth.login.title")}
          onSubmit={() =>
            act.run(async () => {
              await login(email, password);
              if (next && next.startsWith("/app/")) navigate(next, true);
            })
          }
        >
          <Field label={t("auth.email")} name="email" type="email" value={email} onChange={setEmail} autoComplete="username" />
          <Field label={t("auth.password")} name="password" type="password" value={password} onChange={setPassword} autoComplete="current-password" />
          <Alert error={act.error} />
          <button type="submit" disabled={act.busy}>
            {t("auth.login.submit")}
          </button>
        </Form>
        <p>
          <Link href="/app/reset">{t("auth.forgot")}</Link> · {t("auth.noAccount")} <Link href="/app/signup">{t("nav.signup")}</Link>
        </p>
      </Card>
    </>
  );
}
