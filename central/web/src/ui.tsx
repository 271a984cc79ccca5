import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from "react";
import { describeError } from "./errors";
import { useI18n } from "./i18n";

/** Load data once (and on `reload()`); `error` is already a sentence. */
export function useLoad<D>(load: () => Promise<D>, deps: unknown[] = []) {
  const { t } = useI18n();
  const [data, setData] = useState<D | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => live && (setData(d), setError(null)),
      (e: unknown) => live && setError(describeError(e, t)),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tick, t, ...deps]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, reload };
}

/** A form's submit handler with a busy flag and the error as a sentence. */
export function useAction() {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const run = useCallback(
    async (fn: () => Promise<string | null | void>) => {
      setBusy(true);
      setError(null);
      setDone(null);
      try {
        const msg = await fn();
        if (msg) setDone(msg);
      } catch (e) {
        setError(describeError(e, t));
      } finally {
        setBusy(false);
      }
    },
    [t],
  );
  return { busy, error, done, run, setError };
}

export type Action = ReturnType<typeof useAction>;

/** A button that runs `run` as `action` (its busy flag, error and message): disabled while it runs, or when told. */
export function ActionButton(props: {
  action: Action;
  run: () => Promise<string | null | void>;
  className?: string;
  disabled?: boolean;
  children: ReactNode;
}) {
  const { action, run } = props;
  return (
    <button type="button" className={props.className} disabled={action.busy || props.disabled} onClick={() => action.run(run)}>
      {props.children}
    </button>
  );
}

export function Alert({ error, done }: { error?: string | null; done?: string | null }) {
  return (
    <>
      {error ? (
        <p className="alert error" role="alert">
          {error}
        </p>
      ) : null}
      {done ? (
        <p className="alert ok" role="status">
          {done}
        </p>
      ) : null}
    </>
  );
}

export function Field(props: {
  label: string;
  name: string;
  type?: string;
  value: string;
  onChange: (v: string) => void;
  required?: boolean;
  autoComplete?: string;
  min?: number;
}) {
  const id = `f-${props.name}`;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={props.type ?? "text"}
        value={props.value}
        required={props.required ?? true}
        autoComplete={props.autoComplete}
        min={props.min}
        onChange={(e) => props.onChange(e.target.value)}
      />
    </div>
  );
}

/** A labelled drop-down (id `f-<name>`, like `Field`); `options` are [value, label] pairs. */
export function SelectField<V extends string>(props: {
  label: string;
  name: string;
  value: V;
  onChange: (v: V) => void;
  options: readonly (readonly [V, string])[];
}) {
  const id = `f-${props.name}`;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select id={id} value={props.value} onChange={(e) => props.onChange(e.target.value as V)}>
        {props.options.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
    </div>
  );
}

export function Form({ onSubmit, children, label }: { onSubmit: () => void; children: ReactNode; label: string }) {
  return (
    <form
      aria-label={label}
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        onSubmit();
      }}
    >
      {children}
    </form>
  );
}

export function Card({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="card" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export const fmtWh = (wh: number) => (Math.abs(wh) >= 10_000 ? `${(wh / 1000).toFixed(2)} kWh` : `${wh} Wh`);
export const fmtTime = (iso: string) => new Date(iso).toLocaleString();
export const short = (s: string, n = 8) => (s.length > 2 * n + 1 ? `${s.slice(0, n)}…${s.slice(-n)}` : s);

/** Download text as a file (CSV export): a blob URL, allowed by the CSP. */
export function download(name: string, text: string, type = "text/csv"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
