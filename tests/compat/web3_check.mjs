// Asks the embedded ledger's JSON-RPC what wallets and explorers ask, through @solana/web3.js 1.x and
// @solana/spl-token, and prints what they answered as one JSON object. tests/test_demo.py runs it after a demo run
// and compares every answer with PostgreSQL. Usage: node web3_check.mjs <rpc url> <questions.json>
import { readFileSync } from "node:fs";
import {
  Connection, Keypair, PublicKey, TransactionMessage, VersionedTransaction, TransactionInstruction,
} from "@solana/web3.js";
import {
  TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, getAccount, getMint, getTokenMetadata, getExtensionTypes,
} from "@solana/spl-token";

const [url, questionsPath] = process.argv.slice(2);
const q = JSON.parse(readFileSync(questionsPath, "utf8"));
const conn = new Connection(url, { commitment: "confirmed", disableRetryOnRateLimit: true });
const MEMO = new PublicKey("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
const out = {};

async function raw(method, params = []) {
  const r = await fetch(url, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return r.json();
}

function instructionsOf(parsed) {
  return parsed.transaction.message.instructions.map((ix) => ("parsed" in ix
    ? { program: ix.program, programId: ix.programId.toBase58(), type: ix.parsed?.type ?? null,
        info: ix.parsed?.info ?? ix.parsed }
    : { program: null, programId: ix.programId.toBase58(), type: null, info: null }));
}

async function mintReport(mintAddress, programId) {
  const mint = new PublicKey(mintAddress);
  const m = await getMint(conn, mint, "confirmed", programId);
  const supply = await conn.getTokenSupply(mint);
  const largest = await conn.getTokenLargestAccounts(mint);
  const accounts = await conn.getParsedProgramAccounts(programId, {
    filters: [...(programId.equals(TOKEN_PROGRAM_ID) ? [{ dataSize: 165 }] : []),
      { memcmp: { offset: 0, bytes: mint.toBase58() } }],
  });
  const holders = accounts.filter((a) => a.account.data.parsed?.type === "account");
  const sum = holders.reduce((s, a) => s + BigInt(a.account.data.parsed.info.tokenAmount.amount), 0n);
  return {
    supply: m.supply.toString(), decimals: m.decimals, tokenSupply: supply.value.amount,
    tokenSupplyDecimals: supply.value.decimals,
    largest: largest.value.map((l) => ({ address: l.address.toBase58(), amount: l.amount })),
    programAccountsSum: sum.toString(), programAccountsCount: holders.length,
  };
}

out.version = await conn.getVersion();
out.health = (await raw("getHealth")).result;
out.slot = await conn.getSlot();
out.blockHeight = await conn.getBlockHeight("finalized");
out.epochInfo = await conn.getEpochInfo();
out.genesisHash = await conn.getGenesisHash();
out.rent165 = await conn.getMinimumBalanceForRentExemption(165);
out.epochSchedule = await conn.getEpochSchedule();
out.firstAvailableBlock = await conn.getFirstAvailableBlock();
out.transactionCount = await conn.getTransactionCount();
out.prioritizationFees = await conn.getRecentPrioritizationFees();
out.supply = (await conn.getSupply()).value.total;
out.largestAccounts = (await conn.getLargestAccounts()).value.map((a) => a.lamports);
out.clusterNodes = (await conn.getClusterNodes()).length;
out.slotLeader = await conn.getSlotLeader();
out.voteAccounts = await conn.getVoteAccounts();
out.performanceSamples = await conn.getRecentPerformanceSamples(5);
const latest = await conn.getLatestBlockhash();
out.blockhashValid = (await conn.isBlockhashValid(latest.blockhash)).value;
try {
  await conn.getBalance(new PublicKey(q.wallets[0]), { minContextSlot: out.slot + 1_000_000 });
  out.minContextSlotError = null;
} catch (e) { out.minContextSlotError = String(e.message ?? e); }

out.energy = await mintReport(q.energyMint, TOKEN_PROGRAM_ID);
out.quote = await mintReport(q.quoteMint, TOKEN_PROGRAM_ID);

out.wallets = {};
for (const w of q.wallets) {
  const owner = new PublicKey(w);
  const parsed = await conn.getParsedTokenAccountsByOwner(owner, { mint: new PublicKey(q.energyMint) });
  const all = await conn.getTokenAccountsByOwner(owner, { programId: TOKEN_PROGRAM_ID });
  const energyParsed = parsed.value.reduce((s, a) => s + BigInt(a.account.data.parsed.info.tokenAmount.amount), 0n);
  let energyAccount = null;
  if (parsed.value.length > 0) {
    energyAccount = (await getAccount(conn, parsed.value[0].pubkey, "confirmed", TOKEN_PROGRAM_ID)).amount.toString();
  }
  out.wallets[w] = { lamports: await conn.getBalance(owner), energyParsed: energyParsed.toString(), energyAccount,
                     tokenAccounts: all.value.length };
}

out.escrows = {};
for (const e of q.escrows) {
  if ((await conn.getAccountInfo(new PublicKey(e))) === null) { out.escrows[e] = null; continue; }
  const bal = await conn.getTokenAccountBalance(new PublicKey(e));
  const acc = await getAccount(conn, new PublicKey(e), "confirmed", TOKEN_PROGRAM_ID);
  out.escrows[e] = { balance: bal.value.amount, account: acc.amount.toString(), owner: acc.owner.toBase58() };
}

const sigs = q.signatures;
out.statuses = {};
for (let i = 0; i < sigs.length; i += 200) {
  const chunk = sigs.slice(i, i + 200);
  const st = await conn.getSignatureStatuses(chunk, { searchTransactionHistory: true });
  chunk.forEach((s, j) => {
    const v = st.value[j];
    out.statuses[s] = v === null ? null : { err: v.err, confirmationStatus: v.confirmationStatus, slot: v.slot };
  });
}
out.transactions = {};
for (const s of sigs) {
  const parsed = await conn.getParsedTransaction(s, { maxSupportedTransactionVersion: 0 });
  const plain = await conn.getTransaction(s, { maxSupportedTransactionVersion: 0 });
  out.transactions[s] = parsed === null ? null : {
    slot: parsed.slot, err: parsed.meta.err, fee: parsed.meta.fee, instructions: instructionsOf(parsed),
    signers: parsed.transaction.message.accountKeys.filter((k) => k.signer).map((k) => k.pubkey.toBase58()),
    plainSlot: plain?.slot ?? null, plainSignature: plain?.transaction.signatures[0] ?? null,
    postTokenBalances: (parsed.meta.postTokenBalances ?? []).map((b) => ({ mint: b.mint, owner: b.owner,
      amount: b.uiTokenAmount.amount })),
  };
}

// Explorer views: history of the energy mint, and the blocks holding the settlements.
out.energyMintSignatures = [];
let before;
for (;;) {
  const page = await conn.getSignaturesForAddress(new PublicKey(q.energyMint), { limit: 100, before });
  out.energyMintSignatures.push(...page.map((p) => ({ signature: p.signature, slot: p.slot, err: p.err,
                                                      memo: p.memo })));
  if (page.length < 100) break;
  before = page[page.length - 1].signature;
}
out.blocks = {};
for (const s of q.blockOf) {
  const slot = out.transactions[s]?.slot;
  if (slot === undefined) continue;
  const block = await conn.getBlock(slot, { maxSupportedTransactionVersion: 0, transactionDetails: "full" });
  const parsedBlock = await conn.getParsedBlock(slot, { maxSupportedTransactionVersion: 0 });
  out.blocks[s] = { slot, signatures: block.transactions.map((t) => t.transaction.signatures[0]),
                    parsedSignatures: parsedBlock.transactions.map((t) => t.transaction.signatures[0]),
                    blockTime: await conn.getBlockTime(slot), parentSlot: block.parentSlot,
                    listed: (await conn.getBlocks(block.parentSlot, slot)).includes(slot) };
}

out.certificates = {};
for (const c of q.certificates) {
  const mint = new PublicKey(c.mint);
  const m = await getMint(conn, mint, "confirmed", TOKEN_2022_PROGRAM_ID);
  const meta = await getTokenMetadata(conn, mint, "confirmed", TOKEN_2022_PROGRAM_ID);
  const parsedInfo = await conn.getParsedAccountInfo(mint);
  const holdings = {};
  for (const h of c.holders) {
    const found = await conn.getParsedTokenAccountsByOwner(new PublicKey(h), { mint });
    holdings[h] = found.value.reduce((s, a) => s + BigInt(a.account.data.parsed.info.tokenAmount.amount), 0n)
      .toString();
  }
  out.certificates[c.mint] = {
    supply: m.supply.toString(), decimals: m.decimals, extensionTypes: getExtensionTypes(m.tlvData),
    name: meta?.name ?? null, symbol: meta?.symbol ?? null, uri: meta?.uri ?? null,
    additionalMetadata: meta?.additionalMetadata ?? [],
    parsedExtensions: (parsedInfo.value?.data.parsed?.info.extensions ?? []).map((e) => e.extension),
    holdings,
  };
}

// Writes: airdrops are refused (production default); a funded key sends a memo with preflight.
try { await conn.requestAirdrop(Keypair.generate().publicKey, 1_000_000_000); out.airdrop = "granted"; }
catch (e) { out.airdrop = String(e.message ?? e); }
const payer = Keypair.fromSecretKey(Uint8Array.from(q.payerSecret));
const memoText = `compat ${Date.now()}`;
const message = new TransactionMessage({
  payerKey: payer.publicKey, recentBlockhash: (await conn.getLatestBlockhash()).blockhash,
  instructions: [new TransactionInstruction({ programId: MEMO, keys: [], data: Buffer.from(memoText) })],
}).compileToV0Message();
out.feeForMessage = (await conn.getFeeForMessage(message)).value;
const tx = new VersionedTransaction(message);
const sim = await conn.simulateTransaction(tx, { sigVerify: false });
out.simulate = { err: sim.value.err, logs: sim.value.logs?.length ?? 0 };
tx.sign([payer]);
const sent = await conn.sendRawTransaction(tx.serialize(), { skipPreflight: false });
let status = null;
for (let i = 0; i < 50 && status === null; i += 1) {
  status = (await conn.getSignatureStatus(sent)).value;
  if (status === null) await new Promise((r) => setTimeout(r, 100));
}
const sentTx = await conn.getParsedTransaction(sent, { maxSupportedTransactionVersion: 0 });
out.sent = { signature: sent, memo: memoText, status: status?.confirmationStatus ?? null, err: status?.err ?? null,
             parsedMemo: sentTx?.transaction.message.instructions[0].parsed ?? null,
             history: (await conn.getSignaturesForAddress(payer.publicKey)).map((p) => p.signature) };

process.stdout.write(JSON.stringify(out));
