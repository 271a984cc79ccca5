import { useState } from "react";
import { api, call } from "../api/client";
import { useI18n } from "../i18n";
import { Link } from "../router";
import { Alert, Card, Field, Form, SelectField, useAction } from "../ui";

export default function Signup() {
  const { t } = useI18n();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<"consumer" | "prosumer">("prosumer");
  const act = useAction();
  return (
    <>
      <h1>{t("auth.signup.title")}</h1>
      <Card title={t("auth.signup.title")}>
        <Form
          label={t("auth.signup.title")}
          onSubmit={() =>
            act.run(async () => {
              await call(() => api.POST("/api/v1/auth/register", { body: { email, password, role } }));
              return t("auth.signup.sent");
            })
          }
        >
          <Field label={t("auth.email")} name="email" type="email" value={email} onChange={setEmail} autoComplete="email" />
          <Field label={t("auth.password")} name="password" type="password" value={password} onChange={setPassword} autoComplete="new-password" />
          <SelectField
            label={t("auth.role")}
            name="role"
            value={role}
            onChange={setRole}
            options={[
              ["prosumer", t("auth.role.prosumer")],
              ["consumer", t("auth.role.consumer")],
            ]}
          />
          <Alert error={act.error} done={act.done} />
          <button type="submit" disabled={act.busy}>
            {t("auth.signup.submit")}
          </button>
        </Form>
        <p>
          <Link href="/app/verify">{t("auth.haveCode")}</Link>
        </p>
      </Card>
    </>
  );
}
