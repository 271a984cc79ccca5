import { useState } from "react";
import { api, call, idem } from "../api/client";
import { useAuth } from "../auth";
import { b58encode } from "../base58";
import { useI18n } from "../i18n";
import { navigate } from "../router";
import { ActionButton, Alert, Card, Field, Form, fmtTime, short, useAction, useLoad } from "../ui";
import { WalletConnect, Wallets, useSigner } from "../wallet";

function LinkWallet() {
  const { t } = useI18n();
  const signer = useSigner();
  const wallet = useLoad(async () => {
    try {
      return await call(() => api.GET("/api/v1/wallet"));
    } catch {
      return null;
    }
  });
  const act = useAction();
  return (
    <Card title={t("wallet.title")}>
      <p>{wallet.data ? t("wallet.linked", { address: wallet.data.address }) : t("wallet.none")}</p>
      <WalletConnect />
      {signer.connected && signer.publicKey ? (
        <ActionButton
          action={act}
          run={async () => {
            const address = signer.publicKey!.toBase58();
            const ch = await call(() => api.POST("/api/v1/wallet/link-challenge", { body: { wallet: address } }));
            if (!signer.signMessage) throw new Error("wallet cannot sign messages");
            const sig = await signer.signMessage(new TextEncoder().encode(ch.message));
            await call(() =>
              api.POST("/api/v1/wallet/link", { body: { message: ch.message, signature: b58encode(sig) }, params: { header: idem() } }),
            );
            wallet.reload();
            return t("wallet.linkDone");
          }}
        >
          {t("wallet.link")}
        </ActionButton>
      ) : null}
      <Alert error={act.error} done={act.done} />
    </Card>
  );
}

/** My active sessions (logins): browser, began, last used; end one, this one, or all of them. */
function Sessions() {
  const { t } = useI18n();
  const { logout } = useAuth();
  const list = useLoad(() => call(() => api.GET("/api/v1/me/sessions")));
  const act = useAction();
  const away = () => logout().then(() => navigate("/app/login"));
  return (
    <Card title={t("settings.sessions")}>
      <Alert error={list.error ?? act.error} done={act.done} />
      <ul className="plain" aria-label={t("settings.sessions")}>
        {list.data?.map((s) => (
          <li key={s.id} data-testid="session">
            <b>{s.user_agent || t("settings.session.unknown")}</b>
            {s.current ? ` · ${t("settings.session.current")}` : ""}
            <br />
            <span className="muted">
              {t("settings.session.times", { created: fmtTime(s.created_at), used: fmtTime(s.last_used_at) })}
            </span>{" "}
            {s.current ? null : (
              <ActionButton
                action={act}
                className="linkish"
                run={async () => {
                  await call(() => api.DELETE("/api/v1/me/sessions/{session_id}", { params: { path: { session_id: s.id } } }));
                  list.reload();
                  return t("settings.session.ended");
                }}
              >
                {t("settings.session.end")}
              </ActionButton>
            )}
          </li>
        ))}
      </ul>
      <div className="row">
        <button type="button" className="secondary" onClick={away}>
          {t("settings.logoutHere")}
        </button>
        <ActionButton
          action={act}
          className="secondary"
          run={async () => {
            await call(() => api.DELETE("/api/v1/me/sessions"));
            await away();
          }}
        >
          {t("settings.logoutEverywhere")}
        </ActionButton>
      </div>
    </Card>
  );
}

export default function Settings() {
  const { t } = useI18n();
  const { user, logout } = useAuth();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const pw = useAction();
  return (
    <Wallets>
      <h1>{t("settings.title")}</h1>
      <div className="grid">
        <Card title={t("settings.profile")}>
          <p>{user?.email}</p>
          <p>{t("settings.roleIs", { role: user?.role ?? "" })}</p>
          <p className="muted mono">{short(user?.id ?? "")}</p>
        </Card>
        <LinkWallet />
        <Card title={t("settings.password")}>
          <Form
            label={t("settings.password")}
            onSubmit={() =>
              pw.run(async () => {
                await call(() => api.POST("/api/v1/auth/password", { body: { current_password: current, new_password: next } }));
                await logout();
                navigate("/app/login");
              })
            }
          >
            <Field label={t("auth.currentPassword")} name="current" type="password" value={current} onChange={setCurrent} autoComplete="current-password" />
            <Field label={t("auth.newPassword")} name="next" type="password" value={next} onChange={setNext} autoComplete="new-password" />
            <Alert error={pw.error} />
            <button type="submit" disabled={pw.busy}>
              {t("settings.password")}
            </button>
          </Form>
          <p className="muted">{t("settings.password.endsSessions")}</p>
        </Card>
        <Sessions />
      </div>
    </Wallets>
  );
}
