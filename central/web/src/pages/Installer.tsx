import { useEffect, useRef, useState } from "react";
import { api, call } from "../api/client";
import { useAuth } from "../auth";
import { useI18n } from "../i18n";
import { parseGatewayQr } from "../qr";
import { Alert, Card, Field, Form, fmtTime, short, useAction, useLoad } from "../ui";

/** The phone camera → jsQR on each frame until the gateway's QR code is read. */
function Scanner({ onCode }: { onCode: (deviceId: string, pairing: string) => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);
  const { t } = useI18n();
  useEffect(() => {
    let stream: MediaStream | null = null;
    let stop = false;
    (async () => {
      const { default: jsQR } = await import("jsqr");
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      } catch {
        setError(t("err.generic", { code: "camera" }));
        return;
      }
      const v = video.current!;
      v.srcObject = stream;
      await v.play().catch(() => undefined);
      const canvas = document.createElement("canvas");
      const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
      const tick = () => {
        if (stop) return;
        if (v.videoWidth > 0) {
          canvas.width = v.videoWidth;
          canvas.height = v.videoHeight;
          ctx.drawImage(v, 0, 0);
          const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
          const code = jsQR(img.data, img.width, img.height);
          const parsed = code ? parseGatewayQr(code.data) : null;
          if (parsed) {
            onCode(parsed.deviceId, parsed.pairing);
            return;
          }
        }
        setTimeout(tick, 150);
      };
      tick();
    })();
    return () => {
      stop = true;
      stream?.getTracks().forEach((tr) => tr.stop());
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <>
      <video ref={video} muted playsInline aria-label={t("inst.scan")} />
      <Alert error={error} />
    </>
  );
}

function AddMeter({ deviceId, onDone }: { deviceId: string; onDone: () => void }) {
  const { t } = useI18n();
  const [serial, setSerial] = useState("");
  const [key, setKey] = useState("");
  const [source, setSource] = useState("");
  const act = useAction();
  const id = deviceId.slice(0, 8);
  return (
    <Form
      label={`${t("inst.addMeter")} ${id}`}
      onSubmit={() =>
        act.run(async () => {
          await call(() =>
            api.POST("/api/v1/devices/{device_id}/meters", {
              params: { path: { device_id: deviceId } },
              body: [{ serial, meter_key: key, model: "Eastron SDM630", protocol: "modbus-tcp", source: source || null }],
            }),
          );
          setSerial("");
          setKey("");
          onDone();
        })
      }
    >
      <Field label={t("meters.serial")} name={`add-serial-${id}`} value={serial} onChange={setSerial} autoComplete="off" />
      <Field label={t("meters.key")} name={`add-key-${id}`} type="password" value={key} onChange={setKey} autoComplete="off" />
      <Field label={t("inst.source")} name={`add-source-${id}`} value={source} onChange={setSource} required={false} />
      <Alert error={act.error} />
      <button type="submit" disabled={act.busy}>
        {t("inst.addMeter")}
      </button>
    </Form>
  );
}

export default function Installer() {
  const { t } = useI18n();
  const { user } = useAuth();
  const devices = useLoad(() => call(() => api.GET("/api/v1/devices", { params: { query: { limit: 100 } } })));
  const [scanning, setScanning] = useState(false);
  const [deviceId, setDeviceId] = useState("");
  const [pairing, setPairing] = useState("");
  const [site, setSite] = useState("");
  const [serial, setSerial] = useState("");
  const [meterKey, setMeterKey] = useState("");
  const reg = useAction();
  const admin = useAction();
  // Watch a pending challenge turn verified.
  useEffect(() => {
    if (!devices.data?.some((d) => d.status === "pending")) return;
    const id = setTimeout(devices.reload, 1500);
    return () => clearTimeout(id);
  }, [devices.data, devices.reload]);
  return (
    <>
      <h1>{t("inst.title")}</h1>
      <div className="grid">
        <Card title={t("inst.register")}>
          <button type="button" className="secondary" onClick={() => setScanning(!scanning)}>
            {scanning ? t("inst.scanStop") : t("inst.scan")}
          </button>
          {scanning ? (
            <Scanner
              onCode={(d, p) => {
                setDeviceId(d);
                setPairing(p);
                setScanning(false);
              }}
            />
          ) : null}
          <Form
            label={t("inst.register")}
            onSubmit={() =>
              reg.run(async () => {
                const meters = serial ? [{ serial, meter_key: meterKey, model: "sim", protocol: "modbus-tcp" }] : [];
                await call(() => api.POST("/api/v1/devices", { body: { device_id: deviceId, pairing_code: pairing, site_label: site, meters } as never }));
                devices.reload();
              })
            }
          >
            <Field label={t("inst.device")} name="device-id" value={deviceId} onChange={setDeviceId} autoComplete="off" />
            <Field label={t("inst.pairing")} name="pairing" value={pairing} onChange={setPairing} autoComplete="off" />
            <Field label={t("inst.site")} name="site" value={site} onChange={setSite} required={false} />
            <Field label={t("meters.serial")} name="meter-serial" value={serial} onChange={setSerial} required={false} autoComplete="off" />
            <Field label={t("meters.key")} name="meter-key" type="password" value={meterKey} onChange={setMeterKey} required={false} autoComplete="off" />
            <Alert error={reg.error} />
            <button type="submit" disabled={reg.busy}>
              {t("inst.submit")}
            </button>
          </Form>
        </Card>
        <Card title={t("inst.title")}>
          <Alert error={devices.error ?? admin.error} />
          {devices.data?.length === 0 ? <p>{t("common.none")}</p> : null}
          <ul className="plain">
            {devices.data?.map((d) => (
              <li key={d.device_id} data-testid="device">
                <b>{d.site_label || short(d.device_id)}</b> · <span data-testid="device-status">{t("inst.status", { status: d.status })}</span> ·{" "}
                {d.online ? t("inst.online") : t("inst.offline")} · {t("inst.lastSeen")} {d.last_seen_at ? fmtTime(d.last_seen_at) : "—"} · {t("inst.meterCount", { n: d.meters.length })}
                <AddMeter deviceId={d.device_id} onDone={devices.reload} />
                {user?.role === "admin" ? (
                  <>
                    {" "}
                    <button
                      type="button"
                      className="secondary"
                      onClick={() =>
                        admin.run(async () => {
                          const path = { device_id: d.device_id };
                          const body = { reason: "from the web app" };
                          if (d.status === "suspended") await call(() => api.POST("/api/v1/devices/{device_id}/reinstate", { params: { path }, body }));
                          else await call(() => api.POST("/api/v1/devices/{device_id}/suspend", { params: { path }, body }));
                          devices.reload();
                        })
                      }
                    >
                      {d.status === "suspended" ? t("inst.reinstate") : t("inst.suspend")}
                    </button>
                  </>
                ) : null}
              </li>
            ))}
          </ul>
        </Card>
      </div>
    </>
  );
}
