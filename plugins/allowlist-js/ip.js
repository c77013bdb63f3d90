// IPv4 and IPv6 addresses and CIDR ranges, as byte arrays (IPv4-mapped IPv6 is IPv4).

/** The bytes of an IPv4 (4) or IPv6 (16) address, or undefined if `text` is neither. */
export function parseIp(text) {
  const s = text.trim().replace(/^\[(.*)\]$/, "$1");
  if (s.includes(":")) return parseV6(s);
  return parseV4(s);
}

function parseV4(s) {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^(0|[1-9]\d{0,2})$/.test(p) ? Number(p) : 256));
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

function parseV6(s) {
  if (s.includes("%")) return undefined; // zone ids are never client addresses
  let tail = [];
  const lastColon = s.lastIndexOf(":");
  const dotted = s.slice(lastColon + 1);
  if (dotted.includes(".")) {
    const v4 = parseV4(dotted);
    if (!v4) return undefined;
    tail = v4;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && missing !== 0)) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const bytes = all.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  // ::ffff:a.b.c.d is the IPv4 client a.b.c.d (dual-stack sockets report it so).
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12);
  return bytes;
}

/** `{ bytes, prefix }` of `a.b.c.d/n`, `x::/n` or a single address; throws a message if invalid. */
export function parseCidr(text) {
  const [addr, bits, extra] = text.split("/");
  const bytes = extra === undefined ? parseIp(addr) : undefined;
  if (!bytes) throw `\`${text}\` is not an IP address or CIDR range`;
  const max = bytes.length * 8;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
  if (prefix < 0 || prefix > max) throw `\`${text}\`: the prefix length must be 0..=${max}`;
  return { bytes, prefix };
}

/** Whether address `ip` (bytes) lies in `range` (from `parseCidr`). */
export function inRange(ip, range) {
  if (ip.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.prefix; bit += 8) {
    const n = Math.min(8, range.prefix - bit);
    const mask = (0xff << (8 - n)) & 0xff;
    if ((ip[bit / 8] & mask) !== (range.bytes[bit / 8] & mask)) return false;
  }
  return true;
}
