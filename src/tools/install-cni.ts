#!/usr/bin/env node
/** Installs Berth's default CNI conflist (bridge berth0, 10.88.0.0/16, portmap) if DIR has none. */
import { installDefaultConflist } from "../network/default-conflist.js";

const dir = process.argv[2] ?? "/etc/cni/net.d";
const path = await installDefaultConflist(dir);
console.log(path ? `installed ${path}` : `${dir} already has a CNI config; left as it is`);
