import { StrictMode, Suspense, lazy, type ComponentType, type LazyExoticComponent } from "react";
import { createRoot } from "react-dom/client";
import "./styles.css";
import { openSession } from "./api/client";
import { AuthProvider, useAuth } from "./auth";
import { I18nProvider, useI18n, type Lang, type MessageKey } from "./i18n";
import { Link, navigate, useLocation } from "./router";

type Role = "consumer" | "prosumer" | "installer" | "rec_authority" | "admin";
interface Page {
  component: LazyExoticComponent<ComponentType>;
  roles: Role[] | "public" | "any";
  nav?: MessageKey;
}

// Each page's chunk; the current page's starts loading at once, beside the session refresh (not after it).
const loaders: Record<string, () => Promise<{ default: ComponentType }>> = {
  login: () => import("./pages/Login"),
  signup: () => import("./pages/Signup"),
  verify: () => import("./pages/Verify"),
  reset: () => import("./pages/Reset"),
  validate: () => import("./pages/Validate"),
  dashboard: () => import("./pages/Dashboard"),
  meters: () => import("./pages/Meters"),
  trading: () => import("./pages/Trading"),
  gateways: () => import("./pages/Installer"),
  admin: () => import("./pages/Admin"),
  settings: () => import("./pages/Settings"),
  certificates: () => import("./pages/Certificates"),
  standing: () => import("./pages/Standing"),
  matching: () => import("./pages/Matching"),
  reports: () => import("./pages/Reports"),
  claim: () => import("./pages/ClaimVerify"),
};
const firstPage = location.pathname.replace(/^\/app\/?/, "").split("/")[0];
void loaders[firstPage]?.();
// The session refresh starts now too, before React's first render, which it does not need.
void openSession();
// The dashboard's chart (uPlot) is a chunk of its own that the dashboard imports when it loads: fetch it beside the
// dashboard's chunk rather than after it (one chunk waterfall less before the page is usable).
if (firstPage === "dashboard") void import("./Chart");

const HOUSE: Role[] = ["consumer", "prosumer"];
// Every page is its own chunk (route-level splitting): the first page loads only this file and its own code.
const pages: Record<string, Page> = {
  login: { component: lazy(loaders.login), roles: "public" },
  signup: { component: lazy(loaders.signup), roles: "public" },
  verify: { component: lazy(loaders.verify), roles: "public" },
  reset: { component: lazy(loaders.reset), roles: "public" },
  validate: { component: lazy(loaders.validate), roles: "public" },
  dashboard: { component: lazy(loaders.dashboard), roles: HOUSE, nav: "nav.dashboard" },
  meters: { component: lazy(loaders.meters), roles: HOUSE, nav: "nav.meters" },
  trading: { component: lazy(loaders.trading), roles: HOUSE, nav: "nav.trading" },
  standing: { component: lazy(loaders.standing), roles: HOUSE, nav: "nav.standing" },
  matching: { component: lazy(loaders.matching), roles: HOUSE, nav: "nav.matching" },
  reports: { component: lazy(loaders.reports), roles: HOUSE, nav: "nav.reports" },
  claim: { component: lazy(loaders.claim), roles: "public" },
  certificates: {
    component: lazy(loaders.certificates),
    roles: [...HOUSE, "rec_authority", "admin"],
    nav: "nav.certificates",
  },
  gateways: { component: lazy(loaders.gateways), roles: ["installer", "admin"], nav: "nav.installer" },
  admin: { component: lazy(loaders.admin), roles: ["admin"], nav: "nav.admin" },
  settings: { component: lazy(loaders.settings), roles: "any", nav: "nav.settings" },
};

function home(role: Role): string {
  if (role === "installer") return "/app/gateways";
  if (role === "admin") return "/app/admin";
  if (role === "rec_authority") return "/app/certificates";
  return "/app/dashboard";
}

function allowed(page: Page, role: Role | undefined): boolean {
  if (page.roles === "public") return true;
  if (!role) return false;
  return page.roles === "any" || page.roles.includes(role);
}

function Shell() {
  const { user, ready, logout } = useAuth();
  const { t, lang, setLang } = useI18n();
  const loc = useLocation();
  const name = loc.pathname.replace(/^\/app\/?/, "").split("/")[0] || "";
  const role = user?.role as Role | undefined;
  if (!ready) return <p className="loading">{t("app.loading")}</p>;
  const page = pages[name];
  if (!name || (!page && name === "")) {
    queueMicrotask(() => navigate(role ? home(role) : "/app/login", true));
    return null;
  }
  if (page && page.roles !== "public" && !role) {
    queueMicrotask(() => navigate(`/app/login?next=${encodeURIComponent(loc.pathname + loc.search)}`, true));
    return null;
  }
  if (page && (name === "login" || name === "signup") && role) {
    queueMicrotask(() => navigate(home(role), true));
    return null;
  }
  const Current = page && allowed(page, role) ? page.component : null;
  return (
    <>
      <a className="skip" href="#main">
        {t("app.skip")}
      </a>
      <header className="top">
        <Link href={role ? home(role) : "/app/login"} className="brand">
          {t("app.name")}
        </Link>
        <nav aria-label={t("nav.menu")}>
          <ul>
            {role
              ? Object.entries(pages)
                  .filter(([, p]) => p.nav && allowed(p, role))
                  .map(([key, p]) => (
                    <li key={key}>
                      <Link href={`/app/${key}`} aria-current={key === name ? "page" : undefined}>
                        {t(p.nav!)}
                      </Link>
                    </li>
                  ))
              : [
                  <li key="login">
                    <Link href="/app/login">{t("nav.login")}</Link>
                  </li>,
                  <li key="signup">
                    <Link href="/app/signup">{t("nav.signup")}</Link>
                  </li>,
                ]}
            {role ? (
              <li>
                <button type="button" className="linkish" onClick={() => logout().then(() => navigate("/app/login"))}>
                  {t("nav.logout")}
                </button>
              </li>
            ) : null}
          </ul>
        </nav>
        <label className="lang">
          <span className="sr">{t("lang.label")}</span>
          <select value={lang} onChange={(e) => setLang(e.target.value as Lang)} aria-label={t("lang.label")}>
            <option value="en">English</option>
            <option value="th">ไทย</option>
          </select>
        </label>
      </header>
      <main id="main">
        <Suspense fallback={<p className="loading">{t("app.loading")}</p>}>
          {Current ? <Current /> : <p className="alert error">{page ? t("common.forbidden") : t("common.notFound")}</p>}
        </Suspense>
      </main>
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <I18nProvider>
      <AuthProvider>
        <Shell />
      </AuthProvider>
    </I18nProvider>
  </StrictMode>,
);
