import { api, call } from "../api/client";
import { useI18n } from "../i18n";
import { Alert, Card, fmtTime, fmtWh, short, useAction, useLoad } from "../ui";

const ROLES = ["consumer", "prosumer", "installer", "rec_authority", "admin"] as const;

export default function Admin() {
  const { t } = useI18n();
  const users = useLoad(() => call(() => api.GET("/api/v1/admin/users", { params: { query: { limit: 200 } } })));
  const problems = useLoad(() => call(() => api.GET("/api/v1/admin/mints/problems", { params: { query: { limit: 50 } } })));
  const recon = useLoad(() => call(() => api.GET("/api/v1/admin/market/reconciliation")));
  const claims = useLoad(() => call(() => api.GET("/api/v1/admin/meter-claim-attempts", { params: { query: { limit: 50 } } })));
  const act = useAction();
  return (
    <>
      <h1>{t("admin.title")}</h1>
      <Alert error={act.error} done={act.done} />
      <div className="grid">
        <Card title={t("admin.recon")}>
          <Alert error={recon.error} />
          {recon.data ? (
            <p data-testid="recon" className={recon.data.mismatches.length === 0 ? "ok-text" : "bad-text"}>
              {t("admin.recon.result", { checked: recon.data.checked, mismatches: recon.data.mismatches.length, pending: recon.data.pending })}
            </p>
          ) : null}
          <button type="button" className="secondary" onClick={recon.reload}>
            {t("common.refresh")}
          </button>
        </Card>
        <Card title={t("admin.mints")}>
          <Alert error={problems.error} />
          {problems.data?.length === 0 ? <p>{t("common.none")}</p> : null}
          <ul className="plain">
            {problems.data?.map((p) => (
              <li key={p.key}>
                {short(p.key)} · {fmtWh(p.energy_wh)} · {p.state} · {p.attempts}{" "}
                <button
                  type="button"
                  className="secondary"
                  onClick={() =>
                    act.run(async () => {
                      await call(() => api.POST("/api/v1/admin/mints/{key}/retry", { params: { path: { key: p.key } } }));
                      problems.reload();
                    })
                  }
                >
                  {t("admin.retry")} {short(p.key, 4)}
                </button>
              </li>
            ))}
          </ul>
        </Card>
      </div>
      <Card title={t("admin.users")}>
        <Alert error={users.error} />
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("auth.email")}</th>
                <th scope="col">{t("auth.role")}</th>
                <th scope="col">{t("common.when")}</th>
              </tr>
            </thead>
            <tbody>
              {users.data?.map((u) => (
                <tr key={u.id}>
                  <td>{u.email}</td>
                  <td>
                    <select
                      aria-label={`${t("admin.setRole")} ${u.email}`}
                      value={u.role}
                      onChange={(e) =>
                        act.run(async () => {
                          await call(() => api.PUT("/api/v1/admin/users/{user_id}/role", { params: { path: { user_id: u.id } }, body: { role: e.target.value as (typeof ROLES)[number] } }));
                          users.reload();
                        })
                      }
                    >
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>{fmtTime(u.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
      <Card title={t("admin.claims")}>
        <Alert error={claims.error} />
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("common.when")}</th>
                <th scope="col">{t("meters.serial")}</th>
                <th scope="col">{t("common.status")}</th>
              </tr>
            </thead>
            <tbody>
              {claims.data?.map((c, i) => (
                <tr key={i}>
                  <td>{fmtTime(c.at)}</td>
                  <td>{c.serial}</td>
                  <td>{c.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
    </>
  );
}
