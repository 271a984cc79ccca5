import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { CSRF, api, call, onSessionEnded, openSession, sessionUser, setAccessToken, setSessionUser, type Schemas } from "./api/client";

type User = Schemas["UserOut"];
interface Auth {
  user: User | null;
  ready: boolean;
  login: (email: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
}

const Ctx = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [ready, setReady] = useState(false);
  useEffect(() => {
    onSessionEnded(() => setUser(null));
    // A reload keeps no token: the HttpOnly cookie gives a fresh access token, if there is a session.
    openSession().then((ok) => {
      setUser(ok ? sessionUser : null);
      setReady(true);
    });
  }, []);
  const value = useMemo<Auth>(
    () => ({
      user,
      ready,
      async login(email, password) {
        const out = await call(() =>
          api.POST("/api/v1/auth/session", { body: { email, password }, headers: CSRF, credentials: "same-origin" }),
        );
        setAccessToken(out.access_token);
        setSessionUser(out.user);
        setUser(out.user);
      },
      async logout() {
        try {
          await fetch("/api/v1/auth/session", { method: "DELETE", headers: CSRF, credentials: "same-origin" });
        } finally {
          setAccessToken(null);
          setSessionUser(null);
          setUser(null);
        }
      },
    }),
    [user, ready],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): Auth {
  const v = useContext(Ctx);
  if (!v) throw new Error("AuthProvider missing");
  return v;
}
