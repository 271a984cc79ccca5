// Wallets through @solana/wallet-adapter-react: every Wallet Standard wallet in the browser (Phantom, Solflare,
// Backpack, ...) is detected with no per-wallet adapter. Loaded only by the pages that sign (its own chunk).
import { WalletProvider, useWallet } from "@solana/wallet-adapter-react";
import { VersionedTransaction } from "@solana/web3.js";
import { useMemo, type ReactNode } from "react";
import { useI18n } from "./i18n";
import { short } from "./ui";

export function Wallets({ children }: { children: ReactNode }) {
  const wallets = useMemo(() => [], []);
  return (
    <WalletProvider wallets={wallets} autoConnect={false}>
      {children}
    </WalletProvider>
  );
}

const b64ToBytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const bytesToB64 = (bytes: Uint8Array) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));

/** The wallet signs an unsigned v0 transaction built by the API (transaction-request pattern); base64 in and out. */
export function useSigner() {
  const w = useWallet();
  return {
    ...w,
    async signB64(txB64: string): Promise<string> {
      if (!w.signTransaction) throw new Error("wallet cannot sign transactions");
      const tx = VersionedTransaction.deserialize(b64ToBytes(txB64));
      const signed = await w.signTransaction(tx);
      return bytesToB64(signed.serialize());
    },
  };
}

/** Connect buttons for every detected wallet, or the connected address. */
export function WalletConnect() {
  const { t } = useI18n();
  const { wallets, wallet, select, connect, connected, publicKey, disconnect } = useWallet();
  if (connected && publicKey) {
    return (
      <div className="row">
        <span>{t("wallet.connected", { address: short(publicKey.toBase58()) })}</span>
        <button type="button" className="secondary" onClick={() => void disconnect()}>
          ✕
        </button>
      </div>
    );
  }
  if (wallets.length === 0) return <p className="muted">{t("wallet.noWallets")}</p>;
  return (
    <div className="row">
      {wallets.map((w) => (
        <button
          key={w.adapter.name}
          type="button"
          className="secondary"
          onClick={async () => {
            if (wallet?.adapter.name !== w.adapter.name) select(w.adapter.name);
            try {
              await w.adapter.connect();
            } catch {
              await connect().catch(() => undefined);
            }
          }}
        >
          {t("wallet.connect", { name: w.adapter.name })}
        </button>
      ))}
    </div>
  );
}
