// A tiny own message catalogue (~1 kB): i18next + react-i18next would add ~15 kB gzip to the first page for
// features (namespaces, backends, plurals by ICU) this app does not use. Every string the app shows is a key here.
import { createContext, useContext, useMemo, useState, type ReactNode } from "react";
import { en } from "./messages/en";
import { th } from "./messages/th";

export type Lang = "en" | "th";
export type MessageKey = keyof typeof en;
const catalogues: Record<Lang, Partial<Record<MessageKey, string>>> = { en, th };

export type T = (key: MessageKey, vars?: Record<string, string | number>) => string;

function translate(lang: Lang, key: MessageKey, vars?: Record<string, string | number>): string {
  const text = catalogues[lang][key] ?? en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

interface I18n {
  lang: Lang;
  setLang: (lang: Lang) => void;
  t: T;
}

const Ctx = createContext<I18n | null>(null);

function initialLang(): Lang {
  const saved = localStorage.getItem("gtx.lang");
  if (saved === "en" || saved === "th") return saved;
  return navigator.language.startsWith("th") ? "th" : "en";
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const value = useMemo<I18n>(() => {
    document.documentElement.lang = lang;
    return {
      lang,
      setLang: (l) => {
        localStorage.setItem("gtx.lang", l);
        setLangState(l);
      },
      t: (key, vars) => translate(lang, key, vars),
    };
  }, [lang]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(Ctx);
  if (!v) throw new Error("I18nProvider missing");
  return v;
}
