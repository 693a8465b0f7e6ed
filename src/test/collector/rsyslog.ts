/**
 * A real rsyslogd for tests: Debian's, on a free loopback port with its own config and work
 * dir, writing each message it parsed as one line (`app|msgid|pri|time|structured data|msg`,
 * the message JSON-escaped so multi-line messages stay on one line) to a temp file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

export class Rsyslog {
  private proc: ChildProcess | undefined;
  dir = "";
  port = 0;
  out = "";

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "collector-rsyslog-"));
    this.port = await freePort();
    this.out = join(this.dir, "out.log");
    await writeFile(
      join(this.dir, "rsyslog.conf"),
      `global(workDirectory="${this.dir}" parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
template(name="berth" type="string" string="%app-name%|%msgid%|%pri%|%timereported:::date-rfc3339%|%structured-data%|%msg:::json%\\n")
ruleset(name="berth") { action(type="omfile" file="${this.out}" template="berth") }
input(type="imtcp" address="127.0.0.1" port="${this.port}" ruleset="berth")
`,
    );
    await this.launch();
  }

  /** Starts rsyslogd (again) and waits until it accepts connections. */
  async launch(): Promise<void> {
    this.proc = spawn(
      "/usr/sbin/rsyslogd",
      ["-n", "-f", join(this.dir, "rsyslog.conf"), "-i", join(this.dir, "rsyslog.pid")],
      { stdio: "ignore" },
    );
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect({ host: "127.0.0.1", port: this.port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      });
      if (ok) return;
      if (this.proc.exitCode !== null || Date.now() > deadline)
        throw new Error("rsyslogd did not start listening");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    await done;
  }

  async stop(): Promise<void> {
    await this.kill();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  /** The lines rsyslogd has written so far. */
  received(): string[] {
    return existsSync(this.out) ? readFileSync(this.out, "utf8").split("\n").slice(0, -1) : [];
  }

  /** The message part of each line (JSON-unescaped). */
  messages(): string[] {
    return this.received().map((l) => JSON.parse(`"${l.split("|").slice(5).join("|")}"`) as string);
  }
}
