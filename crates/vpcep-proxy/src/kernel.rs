//! The kernel fast path: `tcp_proxy = close` endpoints realized with nftables NAT, so a
//! connection stays one TCP connection end to end instead of two joined by the agent.
//!
//! Which listeners qualify ([`userspace_reason`] says why not): `tcp_proxy = close` (nothing is
//! added to the stream), listener and backend in the agent's own network namespace, and the
//! same address family on both sides. Their user-space listeners stay bound: a connection the
//! kernel does not take (a source outside the whitelist) reaches the listener, which refuses
//! and counts it as before.
//!
//! Each data plane owns one `inet` table, `vpcep_<pid>_<tag>`, replaced as a whole in one
//! nftables transaction (`nft -j -f -`, JSON built with the `nftables` crate) whenever the plan
//! changes ([`ruleset`] is the pure derivation, unit-tested). `tag` (1..=255, unique among the
//! host's vpcep tables) is the top byte of the conntrack mark of every connection it
//! translated; the low 24 bits number the (endpoint, listener) pair, never reused by one data
//! plane. The table holds:
//! - `nat_pre` / `nat_out` (nat, prerouting / output): per listener, `daddr . dport` from a
//!   whitelisted source (set `wl4_<n>` / `wl6_<n>`): count the connection, set the mark, DNAT to
//!   the backend;
//! - `nat_post` (nat, postrouting): SNAT marked connections to the address the agent itself
//!   would connect from (the route's source for the backend), so the backend never learns the
//!   client's address, as with the user-space path;
//! - `f_pre` / `f_out` (filter, prerouting / output, before NAT): a packet of a connection this
//!   table marked is checked and counted once, where it enters the host or leaves it (not to
//!   loopback: those enter again). One hash lookup of its mark picks its endpoint's chain
//!   `ep_<n>`; a mark no live listener carries is answered with a TCP reset. `ep_<n>` resets
//!   sources its whitelist (`wl4_<n>` / `wl6_<n>`) no longer admits, then counts bytes by
//!   conntrack direction into named counters (`c2b_<n>`, `b2c_<n>`; IP bytes, headers
//!   included); connections are counted in `conn_<n>` by the NAT rule. Conntrack keeps
//!   translating established connections after their rule is gone; the reset is what ends
//!   them when an endpoint is deleted or rejected, changes owner or narrows its whitelist.
//!   Sockets of such connections on this host are also destroyed at once (`ss -K`), so an idle
//!   local peer learns it too.
//!
//! Counters are read with `nft -j list counters` when the registry is read and once a second,
//! and added to the same per-endpoint metrics as the user-space path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use nftables::batch::Batch;
use nftables::expr::{
    BinaryOperation, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix,
    SetItem, CT,
};
use nftables::schema::{
    Chain, Counter, NfListObject, Nftables, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{self, JumpTarget, Match, Operator, Statement, NAT};
use nftables::types::{NfChainType, NfFamily, NfHook};

use crate::config::{ListenerConfig, ListenerKey, TcpProxy, Whitelist};
use crate::metrics::StatsRegistry;

/// The bits of a conntrack mark that name the data plane (table) that set it.
pub const TAG_MASK: u32 = 0xff00_0000;
const FAMILY: NfFamily = NfFamily::INet;
/// Prefix of every table a vpcep data plane creates.
pub const TABLE_PREFIX: &str = "vpcep_";

/// Why a listener stays on the user-space path, or `None` when the kernel can serve it.
pub fn userspace_reason(key: &ListenerKey, cfg: &ListenerConfig) -> Option<&'static str> {
    if cfg.tcp_proxy != TcpProxy::Close {
        Some("tcp_proxy adds to the stream (PROXY header or TOA)")
    } else if key.netns.is_some() || cfg.backend_netns.is_some() {
        Some("listener or backend in another network namespace")
    } else if key.addr.is_ipv4() != cfg.backend.is_ipv4() {
        Some("listener and backend in different address families")
    } else {
        None
    }
}

/// One listener as the kernel realizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelListener {
    /// Endpoint id (counters are per endpoint).
    pub endpoint_id: String,
    /// Number of the endpoint in this table: names its sets, chain and counters.
    pub slot: u32,
    /// Conntrack mark of its connections (tag in the top byte).
    pub mark: u32,
    /// Endpoint address and client port.
    pub addr: SocketAddr,
    /// Backend address and server port.
    pub backend: SocketAddr,
    /// Source address towards the backend; `None`: masquerade.
    pub snat: Option<IpAddr>,
    /// Who may connect.
    pub whitelist: Whitelist,
    /// Whether new connections are translated; `false` for a listener that moved to the
    /// user-space path (e.g. its `tcp_proxy` changed): its established kernel connections go
    /// on, as a listener's connections do when its config changes.
    pub translate: bool,
}

impl KernelListener {
    /// The source networks admitted, of the listener's family, merged (`None`: everyone).
    fn sources(&self) -> Option<Vec<IpNet>> {
        match &self.whitelist {
            Whitelist::Disabled => None,
            Whitelist::Only(nets) => Some(IpNet::aggregate(
                &nets
                    .iter()
                    .filter(|n| matches!(n, IpNet::V4(_)) == self.addr.is_ipv4())
                    .copied()
                    .collect(),
            )),
        }
    }
}

fn v4(ip: IpAddr) -> bool {
    ip.is_ipv4()
}

fn s(v: impl ToString) -> Expression<'static> {
    Expression::String(v.to_string().into())
}

fn named(e: NamedExpression<'static>) -> Expression<'static> {
    Expression::Named(e)
}

fn payload(proto: &'static str, field: &'static str) -> Expression<'static> {
    named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: proto.into(),
            field: field.into(),
        },
    )))
}

fn meta(key: MetaKey) -> Expression<'static> {
    named(NamedExpression::Meta(Meta { key }))
}

fn ct(
    key: &'static str,
    family: Option<stmt_ct::Family>,
    dir: Option<stmt_ct::Dir>,
) -> Expression<'static> {
    named(NamedExpression::CT(CT {
        key: key.into(),
        family,
        dir,
    }))
}

mod stmt_ct {
    pub type Family = nftables::expr::CTFamily;
    pub type Dir = nftables::expr::CTDir;
}

fn prefix(net: IpNet) -> Expression<'static> {
    named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(net.network())),
        len: net.prefix_len() as u32,
    }))
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::EQ, right)
}

/// Matches packets without the TCP RST flag.
fn not_rst() -> Statement<'static> {
    matches(
        named(NamedExpression::Payload(Payload::PayloadField(
            PayloadField {
                protocol: "tcp".into(),
                field: "flags".into(),
            },
        )))
        .and_mask(Expression::String("rst".into())),
        Operator::NEQ,
        s("rst"),
    )
}

/// Answers the packet with a TCP reset.
fn reset() -> Statement<'static> {
    Statement::Reject(Some(stmt::Reject::new(
        Some(stmt::RejectType::TCPReset),
        None,
    )))
}

fn family_tag(is_v4: bool) -> (&'static str, &'static str) {
    if is_v4 {
        ("ipv4", "ip")
    } else {
        ("ipv6", "ip6")
    }
}

/// The whole table for these listeners, as one transaction that replaces what was there.
/// With `accept_new` false the NAT rules are left out (established connections go on,
/// nothing new is translated: a stopping data plane).
pub fn ruleset(
    table: &str,
    tag: u32,
    listeners: &[KernelListener],
    accept_new: bool,
) -> Nftables<'static> {
    let table: String = table.to_string();
    let t = || -> std::borrow::Cow<'static, str> { table.clone().into() };
    let mut b = Batch::new();
    let tab = || {
        NfListObject::Table(Table {
            family: FAMILY,
            name: t(),
            handle: None,
        })
    };
    // add + delete + add: replaces the table whether or not it exists, atomically.
    b.add(tab());
    b.delete(tab());
    b.add(tab());

    let set = |name: String, set_type: SetTypeValue<'static>, elem: Vec<Expression<'static>>| {
        NfListObject::Set(Box::new(Set {
            family: FAMILY,
            table: t(),
            name: name.into(),
            set_type,
            flags: Some(HashSet::from([SetFlag::Interval])),
            elem: (!elem.is_empty()).then(|| elem.into()),
            ..Set::default()
        }))
    };
    // Per endpoint: whitelist sets and counters.
    let mut endpoints: BTreeMap<u32, &KernelListener> = BTreeMap::new();
    for l in listeners {
        endpoints.entry(l.slot).or_insert(l);
    }
    for (slot, l) in &endpoints {
        if let Whitelist::Only(nets) = &l.whitelist {
            for is_v4 in [true, false] {
                let elems: Vec<_> = IpNet::aggregate(
                    &nets
                        .iter()
                        .filter(|n| matches!(n, IpNet::V4(_)) == is_v4)
                        .copied()
                        .collect(),
                )
                .into_iter()
                .map(prefix)
                .collect();
                let ty = if is_v4 {
                    SetType::Ipv4Addr
                } else {
                    SetType::Ipv6Addr
                };
                b.add(set(
                    format!("wl{}_{slot}", if is_v4 { 4 } else { 6 }),
                    SetTypeValue::Single(ty),
                    elems,
                ));
            }
        }
        for c in ["conn", "c2b", "b2c"] {
            b.add(NfListObject::Counter(Counter {
                family: FAMILY,
                table: t(),
                name: format!("{c}_{slot}").into(),
                handle: None,
                packets: None,
                bytes: None,
            }));
        }
    }

    let chain = |name: &str, base: Option<(NfChainType, NfHook, i32)>| {
        NfListObject::Chain(Chain {
            family: FAMILY,
            table: t(),
            name: name.to_string().into(),
            _type: base.map(|b| b.0),
            hook: base.map(|b| b.1),
            prio: base.map(|b| b.2),
            ..Chain::default()
        })
    };
    let rule = |chain: &str, expr: Vec<Statement<'static>>| {
        NfListObject::Rule(Rule {
            family: FAMILY,
            table: t(),
            chain: chain.to_string().into(),
            expr: expr.into(),
            ..Rule::default()
        })
    };
    b.add(chain(
        "nat_pre",
        Some((NfChainType::NAT, NfHook::Prerouting, -100)),
    ));
    b.add(chain(
        "nat_out",
        Some((NfChainType::NAT, NfHook::Output, -100)),
    ));
    b.add(chain(
        "nat_post",
        Some((NfChainType::NAT, NfHook::Postrouting, 100)),
    ));
    b.add(chain(
        "f_pre",
        Some((NfChainType::Filter, NfHook::Prerouting, -150)),
    ));
    b.add(chain(
        "f_out",
        Some((NfChainType::Filter, NfHook::Output, -150)),
    ));
    for slot in endpoints.keys() {
        b.add(chain(&format!("ep_{slot}"), None));
    }

    for l in listeners.iter().filter(|l| accept_new && l.translate) {
        let is_v4 = v4(l.addr.ip());
        let (nfproto, proto) = family_tag(is_v4);
        let mut expr = vec![
            eq(meta(MetaKey::Nfproto), s(nfproto)),
            eq(payload(proto, "daddr"), s(l.addr.ip())),
            eq(
                payload("tcp", "dport"),
                Expression::Number(l.addr.port().into()),
            ),
        ];
        match l.sources() {
            None => {}
            Some(nets) if nets.is_empty() => continue, // nobody admitted: the listener refuses
            Some(_) => expr.push(eq(
                payload(proto, "saddr"),
                s(format!("@wl{}_{}", if is_v4 { 4 } else { 6 }, l.slot)),
            )),
        }
        expr.push(Statement::Counter(stmt::Counter::Named(
            format!("conn_{}", l.slot).into(),
        )));
        expr.push(Statement::Mangle(stmt::Mangle {
            key: ct("mark", None, None),
            value: Expression::Number(l.mark),
        }));
        expr.push(Statement::DNAT(Some(NAT {
            addr: Some(s(l.backend.ip())),
            family: Some(if is_v4 {
                stmt::NATFamily::IP
            } else {
                stmt::NATFamily::IP6
            }),
            port: Some(Expression::Number(l.backend.port().into())),
            flags: None,
        })));
        b.add(rule("nat_pre", expr.clone()));
        b.add(rule("nat_out", expr));
        let mut post = vec![eq(ct("mark", None, None), Expression::Number(l.mark))];
        post.push(match l.snat {
            Some(ip) => Statement::SNAT(Some(NAT {
                addr: Some(s(ip)),
                family: Some(if is_v4 {
                    stmt::NATFamily::IP
                } else {
                    stmt::NATFamily::IP6
                }),
                port: None,
                flags: None,
            })),
            None => Statement::Masquerade(None),
        });
        b.add(rule("nat_post", post));
    }

    // One filter chain per hook, at -150 (before NAT): a packet of a connection this table
    // translated is checked and counted where it enters the host (prerouting) or where it
    // leaves it (output, not to loopback: those enter again). Its mark picks its endpoint's
    // chain in one hash lookup (goto, so nothing after it runs); a mark that no live listener
    // carries falls through to the reset. Everything else leaves at the first rule.
    let mut filter = vec![vec![
        matches(
            ct("mark", None, None).and_mask(Expression::Number(TAG_MASK)),
            Operator::NEQ,
            Expression::Number(tag),
        ),
        Statement::Return(None),
    ]];
    if !listeners.is_empty() {
        let items = listeners
            .iter()
            .map(|l| {
                SetItem::Mapping(
                    Expression::Number(l.mark),
                    Expression::Verdict(nftables::expr::Verdict::Goto(JumpTarget {
                        target: format!("ep_{}", l.slot).into(),
                    })),
                )
            })
            .collect();
        filter.push(vec![Statement::VerdictMap(stmt::VerdictMap {
            key: ct("mark", None, None),
            data: named(NamedExpression::Set(items)),
        })]);
    }
    // Resets are not themselves answered.
    filter.push(vec![not_rst(), reset()]);
    for r in &filter {
        b.add(rule("f_pre", r.clone()));
    }
    let mut out = filter;
    out.insert(
        1,
        vec![eq(meta(MetaKey::Oif), s("lo")), Statement::Return(None)],
    );
    for r in out {
        b.add(rule("f_out", r));
    }
    // Per endpoint: sources outside the whitelist are cut (the whitelist may have narrowed
    // since the connection was translated), then bytes are counted by conntrack direction.
    for (slot, l) in &endpoints {
        let ep = format!("ep_{slot}");
        if matches!(l.whitelist, Whitelist::Only(_)) {
            for is_v4 in [true, false] {
                let (nfproto, _) = family_tag(is_v4);
                b.add(rule(
                    &ep,
                    vec![
                        eq(meta(MetaKey::Nfproto), s(nfproto)),
                        not_rst(),
                        matches(
                            ct(
                                if is_v4 { "ip saddr" } else { "ip6 saddr" },
                                None,
                                Some(stmt_ct::Dir::Original),
                            ),
                            Operator::NEQ,
                            s(format!("@wl{}_{slot}", if is_v4 { 4 } else { 6 })),
                        ),
                        reset(),
                    ],
                ));
            }
        }
        b.add(rule(
            &ep,
            vec![
                eq(ct("direction", None, None), s("original")),
                Statement::Counter(stmt::Counter::Named(format!("c2b_{slot}").into())),
                Statement::Accept(None),
            ],
        ));
        b.add(rule(
            &ep,
            vec![Statement::Counter(stmt::Counter::Named(
                format!("b2c_{slot}").into(),
            ))],
        ));
    }
    b.to_nftables()
}

trait AndMask {
    fn and_mask(self, mask: Expression<'static>) -> Expression<'static>;
}

impl AndMask for Expression<'static> {
    fn and_mask(self, mask: Expression<'static>) -> Expression<'static> {
        Expression::BinaryOperation(Box::new(BinaryOperation::AND(self, mask)))
    }
}

/// Runs `nft` with `args`, feeding `stdin`; its stdout, or why it failed.
fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn apply_json(doc: &Nftables<'_>) -> Result<(), String> {
    let json = serde_json::to_string(doc).map_err(|e| e.to_string())?;
    nft(&["-j", "-f", "-"], Some(&json)).map(drop)
}

/// Names of the host's tables of `inet` family that start with [`TABLE_PREFIX`].
fn vpcep_tables() -> Result<Vec<String>, String> {
    let out = nft(&["-j", "list", "tables", "inet"], None)?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["table"]["name"].as_str())
        .filter(|n| n.starts_with(TABLE_PREFIX))
        .map(str::to_string)
        .collect())
}

/// Whether process `pid`, having created its table with tag `pick`, must give it up: another
/// process with a lower pid has a table with the same tag among `tables`.
fn yields_tag(pid: u32, pick: u32, tables: &[String]) -> bool {
    tables
        .iter()
        .filter_map(|name| parse_table_name(name))
        .any(|(other, tag)| tag == pick && other < pid)
}

/// `vpcep_<pid>_<tag>` → (pid, tag).
fn parse_table_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(TABLE_PREFIX)?;
    let (pid, tag) = rest.split_once('_')?;
    Some((pid.parse().ok()?, u32::from_str_radix(tag, 16).ok()?))
}

/// Counter values by name.
fn read_counters(table: &str) -> Result<HashMap<String, u64>, String> {
    let out = nft(&["-j", "list", "counters", "table", "inet", table], None)?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let c = &o["counter"];
            let name = c["name"].as_str()?;
            // conn_<n> counts connections (packets of first packets); bytes elsewhere.
            let value = if name.starts_with("conn_") {
                c["packets"].as_u64()?
            } else {
                c["bytes"].as_u64()?
            };
            Some((name.to_string(), value))
        })
        .collect())
}

/// One conntrack entry, as far as cutting needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// Conntrack mark.
    pub mark: u32,
    /// Original direction: client → endpoint.
    pub original: (SocketAddr, SocketAddr),
    /// Reply direction: backend → the translated source.
    pub reply: (SocketAddr, SocketAddr),
    /// TCP state (`ESTABLISHED`, `TIME_WAIT`, ...).
    pub state: String,
}

impl Tracked {
    /// Whether the connection is over (`TIME_WAIT`, `CLOSE`): it carries nothing more, and its
    /// addresses and ports may already belong to a new connection (a client may reuse a port
    /// in `TIME_WAIT`, as Linux allows on loopback), which another table may have translated.
    /// Every other state is open, a handshake under way and a half-closed connection included.
    pub fn is_over(&self) -> bool {
        matches!(self.state.as_str(), "TIME_WAIT" | "CLOSE")
    }

    /// Whether this is an open connection (see [`Tracked::is_over`]) translated by the table
    /// tagged `tag`.
    pub fn is_open_in(&self, tag: u32) -> bool {
        self.mark & TAG_MASK == tag && !self.is_over()
    }
}

/// Parses `/proc/net/nf_conntrack` lines of TCP entries.
pub fn parse_conntrack(text: &str) -> Vec<Tracked> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(2) != Some(&"tcp") {
                return None;
            }
            let state = f.get(5)?.to_string();
            let kv = |k: &str, nth: usize| {
                f.iter()
                    .filter_map(|x| x.strip_prefix(k))
                    .nth(nth)
                    .map(str::to_string)
            };
            let addr = |nth: usize, a: &str, p: &str| -> Option<SocketAddr> {
                Some(SocketAddr::new(
                    kv(a, nth)?.parse().ok()?,
                    kv(p, nth)?.parse().ok()?,
                ))
            };
            Some(Tracked {
                mark: kv("mark=", 0)?.parse().ok()?,
                original: (addr(0, "src=", "sport=")?, addr(0, "dst=", "dport=")?),
                reply: (addr(1, "src=", "sport=")?, addr(1, "dst=", "dport=")?),
                state,
            })
        })
        .collect()
}

/// Whether `after` admits less than `before`: a mark gone or a source network no longer
/// covered.
pub fn narrows(before: &[KernelListener], after: &[KernelListener]) -> bool {
    let after: HashMap<u32, Option<Vec<IpNet>>> =
        after.iter().map(|l| (l.mark, l.sources())).collect();
    before
        .iter()
        .any(|l| match (after.get(&l.mark), l.sources()) {
            (None, _) => true,
            (Some(None), _) => false,
            (Some(Some(_)), None) => true,
            (Some(Some(now)), Some(old)) => old.iter().any(|o| !now.iter().any(|n| n.contains(o))),
        })
}

/// The open entries of `tag` whose (mark, client address) `live` no longer admits. An entry of
/// a connection that is over is left alone: destroying the sockets of its addresses and ports
/// could hit a new connection that reuses them.
pub fn to_cut<'a>(
    tracked: &'a [Tracked],
    tag: u32,
    live: &HashMap<u32, Option<Vec<IpNet>>>,
) -> Vec<&'a Tracked> {
    tracked
        .iter()
        .filter(|t| t.is_open_in(tag))
        .filter(|t| match live.get(&t.mark) {
            None => true,
            Some(None) => false,
            Some(Some(nets)) => !nets.iter().any(|n| n.contains(&t.original.0.ip())),
        })
        .collect()
}

fn read_conntrack() -> Vec<Tracked> {
    std::fs::read_to_string("/proc/net/nf_conntrack")
        .map(|t| parse_conntrack(&t))
        .unwrap_or_default()
}

fn ss_addr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Destroys the sockets of these connections that live on this host (either end), so their
/// owners learn at once that the connection is gone; remote peers learn it from the reset
/// their next packet gets.
fn kill_local_sockets(cut: &[&Tracked]) {
    for chunk in cut.chunks(64) {
        let filter: Vec<String> = chunk
            .iter()
            .flat_map(|t| [t.original, t.reply])
            .map(|(src, dst)| format!("( src {} and dst {} )", ss_addr(src), ss_addr(dst)))
            .collect();
        let filter = filter.join(" or ");
        match Command::new("ss")
            .args(["-K", "-t", "-n", "-H", "state", "all"])
            .arg(&filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => tracing::debug!("ss -K failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => tracing::debug!("cannot run ss: {e}"),
        }
    }
}

/// Deletes every conntrack entry whose mark carries `tag` (a ctnetlink flush filtered by
/// mark and mask).
pub fn flush_conntrack(tag: u32) -> Result<(), String> {
    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };
    use std::os::fd::AsRawFd;
    const CTNETLINK_DELETE: u16 = (1 << 8) | 2; // NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE
    const NLM_F_REQUEST_ACK: u16 = 0x1 | 0x4;
    const CTA_MARK: u16 = 8;
    const CTA_MARK_MASK: u16 = 21;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|e| format!("netlink socket: {e}"))?;
    let attrs = [(CTA_MARK, tag), (CTA_MARK_MASK, TAG_MASK)];
    let len = 16 + 4 + attrs.len() * 8;
    let mut msg = Vec::with_capacity(len);
    msg.extend((len as u32).to_ne_bytes());
    msg.extend(CTNETLINK_DELETE.to_ne_bytes());
    msg.extend(NLM_F_REQUEST_ACK.to_ne_bytes());
    msg.extend(1u32.to_ne_bytes()); // sequence
    msg.extend(0u32.to_ne_bytes()); // port id: the kernel
    msg.extend([0u8, 0, 0, 0]); // nfgenmsg: any family, version 0, resource 0
    for (ty, value) in attrs {
        msg.extend(8u16.to_ne_bytes());
        msg.extend(ty.to_ne_bytes());
        msg.extend(value.to_be_bytes());
    }
    sendto(
        fd.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(|e| format!("netlink send: {e}"))?;
    let mut buf = [0u8; 256];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
        .map_err(|e| format!("netlink receive: {e}"))?;
    // NLMSG_ERROR (2) carries the result; 0 or "no such entry" are success.
    if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == 2 {
        let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if err != 0 && err != -2 {
            return Err(format!(
                "ctnetlink: {}",
                std::io::Error::from_raw_os_error(-err)
            ));
        }
    }
    Ok(())
}

/// Deletes `table` and the conntrack entries of `tag`: what is left to do about a table whose
/// state is lost.
pub(crate) fn abandon_table(table: &str, tag: u32) {
    let _ = nft(&["delete", "table", "inet", table], None);
    if let Err(e) = flush_conntrack(tag) {
        tracing::warn!(table, "deleting its conntrack entries: {e}");
    }
}

/// The source address this host uses towards `backend` (what the user-space path shows it).
pub fn route_source(backend: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if backend.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(backend).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// Removes the tables of data planes whose process is gone (killed before it could remove its
/// own: their rules would go on translating) and returns the tags of the others.
pub fn remove_stale_tables() -> Result<HashSet<u32>, String> {
    let mut used = HashSet::new();
    for name in vpcep_tables()? {
        match parse_table_name(&name) {
            Some((pid, _)) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                tracing::info!(table = %name, "removing the nftables table of a data plane that is gone");
                let _ = nft(&["delete", "table", "inet", &name], None);
            }
            Some((_, tag)) => {
                used.insert(tag);
            }
            None => {}
        }
    }
    Ok(used)
}

/// Serializes table creation in this process, so two data planes pick different tags.
static START: Mutex<()> = Mutex::new(());
static NEXT_LOCAL: AtomicU32 = AtomicU32::new(0);

/// The state counters are read against.
#[derive(Debug)]
struct Counters {
    table: String,
    /// Endpoint id by slot.
    endpoints: HashMap<u32, String>,
    /// Last values read, by counter name.
    seen: HashMap<String, u64>,
}

impl Counters {
    /// Reads the table's counters and adds what grew to the endpoints' metrics.
    fn flush(&mut self, stats: &StatsRegistry) {
        let Ok(now) = read_counters(&self.table) else {
            return;
        };
        for (name, value) in &now {
            let Some((kind, slot)) = name.split_once('_') else {
                continue;
            };
            let Some(id) = slot.parse().ok().and_then(|s: u32| self.endpoints.get(&s)) else {
                continue;
            };
            let before = self.seen.get(name).copied().unwrap_or(0);
            let delta = value.saturating_sub(before);
            if delta > 0 {
                // An endpoint already gone from the registry is not brought back.
                if let Some(m) = stats.existing(id) {
                    m.kernel_add(kind, delta);
                }
            }
        }
        self.seen = now;
    }
}

/// A data plane's nftables table.
#[derive(Debug)]
pub(crate) struct KernelPath {
    table: String,
    tag: u32,
    next_mark: u32,
    next_slot: u32,
    marks: HashMap<(SocketAddr, String), u32>,
    slots: HashMap<String, u32>,
    listeners: Vec<KernelListener>,
    counters: Arc<Mutex<Counters>>,
    /// Set once the table is deleted.
    removed: bool,
}

impl Drop for KernelPath {
    /// A data plane dropped without a stop (e.g. a panic) leaves no rules behind.
    fn drop(&mut self) {
        if !self.removed {
            let _ = nft(&["delete", "table", "inet", &self.table], None);
        }
    }
}

impl KernelPath {
    /// Creates this data plane's (empty) table, after removing those of processes that are
    /// gone. Fails where nftables cannot be used (no `nft`, no CAP_NET_ADMIN).
    ///
    /// The tag is unique on the host: within this process [`START`] serializes the picks; two
    /// processes that picked the same one at the same moment both see it afterwards, and the
    /// one with the higher pid picks again (a shared tag would make each table reset the
    /// other's connections).
    pub(crate) fn start() -> Result<KernelPath, String> {
        let _one = START.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        let (table, pick) = (0..8)
            .find_map(|_| Self::claim_tag(pid).transpose())
            .unwrap_or_else(|| Err("no vpcep table tag stayed free after 8 tries".into()))?;
        let tag = pick << 24;
        Ok(KernelPath {
            counters: Arc::new(Mutex::new(Counters {
                table: table.clone(),
                endpoints: HashMap::new(),
                seen: HashMap::new(),
            })),
            table,
            tag,
            next_mark: 1,
            next_slot: 1,
            marks: HashMap::new(),
            slots: HashMap::new(),
            listeners: Vec::new(),
            removed: false,
        })
    }

    /// Creates an empty table with a tag no other live table had; `None` when another process
    /// with a lower pid created one with the same tag at the same time (this one is removed).
    fn claim_tag(pid: u32) -> Result<Option<(String, u32)>, String> {
        let used = remove_stale_tables()?;
        let free: Vec<u32> = (1..=255u32).filter(|t| !used.contains(t)).collect();
        if free.is_empty() {
            return Err("255 vpcep tables on this host already".into());
        }
        let local = NEXT_LOCAL.fetch_add(1, Ordering::Relaxed) as usize;
        let pick = free[(pid as usize + local * 37) % free.len()];
        let table = format!("{TABLE_PREFIX}{pid}_{pick:02x}");
        apply_json(&ruleset(&table, pick << 24, &[], true))?;
        if yields_tag(pid, pick, &vpcep_tables()?) {
            let _ = nft(&["delete", "table", "inet", &table], None);
            return Ok(None);
        }
        Ok(Some((table, pick)))
    }

    /// The table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// The tag its marks carry.
    pub(crate) fn tag(&self) -> u32 {
        self.tag
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reader of the counters into `stats`, for the registry to call before it is read.
    pub(crate) fn refresher(&self, stats: StatsRegistry) -> impl Fn() + Send + Sync + 'static {
        let counters = self.counters.clone();
        move || {
            counters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .flush(&stats)
        }
    }

    /// Replaces the table with rules for `wanted` (listener key, config, SNAT source), then
    /// cuts the connections that are no longer admitted. `others` are the plan's remaining
    /// listeners: one this table translated before keeps its established connections.
    pub(crate) fn apply(
        &mut self,
        wanted: &[(ListenerKey, ListenerConfig, Option<IpAddr>)],
        others: &[(&ListenerKey, &ListenerConfig)],
        stats: &StatsRegistry,
    ) -> Result<(), String> {
        let mut marks = HashMap::new();
        let mut slots = HashMap::new();
        let mut listeners = Vec::with_capacity(wanted.len());
        let moved = others
            .iter()
            .filter(|(key, cfg)| {
                self.marks
                    .contains_key(&(key.addr, cfg.endpoint_id.clone()))
            })
            .map(|(key, cfg)| ((*key).clone(), (*cfg).clone(), None, false));
        let all: Vec<_> = wanted
            .iter()
            .map(|(k, c, s)| (k.clone(), c.clone(), *s, true))
            .chain(moved)
            .collect();
        for (key, cfg, snat, translate) in &all {
            let id = cfg.endpoint_id.clone();
            let mark = match self.marks.get(&(key.addr, id.clone())) {
                Some(m) => *m,
                None => {
                    let m = self.tag | (self.next_mark & !TAG_MASK);
                    self.next_mark = self.next_mark.wrapping_add(1).max(1);
                    m
                }
            };
            marks.insert((key.addr, id.clone()), mark);
            let slot = match self.slots.get(&id).or(slots.get(&id)) {
                Some(s) => *s,
                None => {
                    self.next_slot += 1;
                    self.next_slot - 1
                }
            };
            slots.insert(id.clone(), slot);
            listeners.push(KernelListener {
                endpoint_id: id,
                slot,
                mark,
                addr: key.addr,
                backend: cfg.backend,
                snat: *snat,
                whitelist: cfg.whitelist.clone(),
                translate: *translate,
            });
        }
        let doc = ruleset(&self.table, self.tag, &listeners, true);
        // A data plane killed since would go on translating with its last rules.
        let _ = remove_stale_tables();
        {
            let mut c = self.counters();
            c.flush(stats);
            apply_json(&doc)?;
            c.endpoints = slots.iter().map(|(id, s)| (*s, id.clone())).collect();
            c.seen.clear();
        }
        self.marks = marks;
        self.slots = slots;
        let before = std::mem::replace(&mut self.listeners, listeners);
        // Reading the conntrack table costs time in proportion to its size: only when
        // something may have to be cut.
        if narrows(&before, &self.listeners) {
            self.cut();
        }
        Ok(())
    }

    /// What may go on: mark → admitted sources (`None`: all).
    fn live(&self) -> HashMap<u32, Option<Vec<IpNet>>> {
        self.listeners
            .iter()
            .map(|l| (l.mark, l.sources()))
            .collect()
    }

    /// Destroys local sockets of connections no longer admitted.
    fn cut(&self) {
        let tracked = read_conntrack();
        let live = self.live();
        let cut = to_cut(&tracked, self.tag, &live);
        if !cut.is_empty() {
            tracing::info!(connections = cut.len(), table = %self.table, "cutting kernel-path connections no longer admitted");
            kill_local_sockets(&cut);
        }
    }

    /// Open connections of this table: a drain waits for them, half-closed ones included (one
    /// side has sent FIN, the other may still be sending).
    fn open_connections(&self) -> usize {
        read_conntrack()
            .iter()
            .filter(|t| t.is_open_in(self.tag))
            .count()
    }

    /// Stops translating new connections, lets open ones go on until they end or `drain`
    /// passes, cuts the rest and removes the table.
    pub(crate) fn stop(mut self, stats: &StatsRegistry, drain: Duration) {
        let wanted: Vec<_> = Vec::new();
        let keep = std::mem::take(&mut self.listeners);
        let doc = ruleset(&self.table, self.tag, &keep, false);
        if let Err(e) = apply_json(&doc) {
            tracing::warn!(table = %self.table, "{e}");
        }
        self.listeners = keep;
        let deadline = Instant::now() + drain;
        while Instant::now() < deadline && self.open_connections() > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.counters().flush(stats);
        self.listeners = wanted;
        self.cut();
        // Conntrack would go on translating connections with remote peers after the table is
        // gone: forget them, so their next packet meets no translation (and a reset).
        if let Err(e) = flush_conntrack(self.tag) {
            tracing::warn!(table = %self.table, "deleting its conntrack entries: {e}");
        }
        if let Err(e) = nft(&["delete", "table", "inet", &self.table], None) {
            tracing::warn!(table = %self.table, "removing the table: {e}");
        }
        self.removed = true;
    }

    /// Removes the table and cuts every connection it translated, at once (after a failed
    /// transaction: neither the old rules nor connections nobody checks may stay).
    pub(crate) fn abandon(mut self) {
        self.listeners.clear();
        self.cut();
        abandon_table(&self.table, self.tag);
        self.removed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(slot: u32, mark: u32, whitelist: Whitelist) -> KernelListener {
        KernelListener {
            endpoint_id: format!("ep-{slot}"),
            slot,
            mark,
            addr: "10.0.0.5:80".parse().unwrap(),
            backend: "10.1.0.10:8080".parse().unwrap(),
            snat: Some("10.1.0.1".parse().unwrap()),
            whitelist,
            translate: true,
        }
    }

    fn json(doc: &Nftables<'_>) -> serde_json::Value {
        serde_json::to_value(doc).unwrap()
    }

    /// The JSON text of each rule of `chain`, in order.
    fn rules_of(v: &serde_json::Value, chain: &str) -> Vec<String> {
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["add"]["rule"].as_object())
            .filter(|r| r["chain"] == chain)
            .map(|r| r["expr"].to_string())
            .collect()
    }

    #[test]
    fn the_table_is_replaced_in_one_transaction() {
        let v = json(&ruleset("vpcep_1_07", 7 << 24, &[], true));
        let objs = v["nftables"].as_array().unwrap();
        assert_eq!(objs[0]["add"]["table"]["name"], "vpcep_1_07");
        assert_eq!(objs[1]["delete"]["table"]["name"], "vpcep_1_07");
        assert_eq!(objs[2]["add"]["table"]["name"], "vpcep_1_07");
        assert!(rules_of(&v, "nat_pre").is_empty());
        for chain in ["f_pre", "f_out"] {
            let rules = rules_of(&v, chain);
            assert!(
                !rules.iter().any(|r| r.contains("vmap")),
                "no empty verdict map: {rules:?}"
            );
        }
    }

    #[test]
    fn a_listener_is_translated_marked_and_source_translated() {
        let wl = Whitelist::parse(
            true,
            &["10.2.0.0/24".into(), "10.2.0.7".into(), "fd00::/8".into()],
        )
        .unwrap();
        let l = listener(3, 0x0700_0001, wl);
        let v = json(&ruleset("t", 0x0700_0000, std::slice::from_ref(&l), true));
        let text = v.to_string();
        let pre = rules_of(&v, "nat_pre");
        assert_eq!(pre, rules_of(&v, "nat_out"));
        assert_eq!(pre.len(), 1);
        let r = &pre[0];
        for part in [
            r#""right":"10.0.0.5""#,
            r#""right":80"#,
            r#""right":"@wl4_3""#,
            r#"{"counter":"conn_3"}"#,
            r#""value":117440513"#,
            r#"{"dnat":{"addr":"10.1.0.10","family":"ip","port":8080}}"#,
        ] {
            assert!(r.contains(part), "{part} in {r}");
        }
        let post = &rules_of(&v, "nat_post")[0];
        assert!(
            post.contains(r#"{"snat":{"addr":"10.1.0.1","family":"ip"}}"#),
            "{post}"
        );
        // The whitelist set is merged (the /32 inside the /24) and per family.
        assert!(text.contains(r#""name":"wl4_3""#) && text.contains(r#""name":"wl6_3""#));
        assert_eq!(text.matches(r#""addr":"10.2.0.0","len":24"#).count(), 1);
        assert!(!text.contains("10.2.0.7"), "{text}");
        // The mark leads to the endpoint's chain, which cuts sources the whitelist no longer
        // admits (by the connection's original source) and counts the rest.
        for chain in ["f_pre", "f_out"] {
            assert!(rules_of(&v, chain)
                .iter()
                .any(|r| r.contains(r#"[117440513,{"goto":{"target":"ep_3"}}]"#)));
        }
        let ep = rules_of(&v, "ep_3");
        assert_eq!(ep.len(), 4, "{ep:?}");
        assert!(
            ep[0].contains(r#"{"ct":{"dir":"original","key":"ip saddr"}}"#),
            "{}",
            ep[0]
        );
        assert!(ep[0].contains(r#""right":"@wl4_3""#) && ep[0].contains("tcp reset"));
        assert!(ep[1].contains(r#""right":"@wl6_3""#) && ep[1].contains("tcp reset"));
        assert!(ep[2].contains(r#"{"counter":"c2b_3"}"#) && ep[2].contains("accept"));
        assert!(ep[3].contains(r#"{"counter":"b2c_3"}"#));
    }

    #[test]
    fn an_open_whitelist_admits_all_and_an_empty_one_translates_nothing() {
        let open = listener(1, 0x0700_0001, Whitelist::Disabled);
        let mut shut = listener(2, 0x0700_0002, Whitelist::Only(vec![]));
        shut.addr = "10.0.0.6:80".parse().unwrap();
        let v = json(&ruleset("t", 0x0700_0000, &[open, shut], true));
        let pre = rules_of(&v, "nat_pre");
        assert_eq!(pre.len(), 1);
        assert!(!pre[0].contains("@wl"));
        // The open one only counts; the closed one cuts every source (its sets are empty).
        assert_eq!(rules_of(&v, "ep_1").len(), 2);
        let shut = rules_of(&v, "ep_2");
        assert!(shut[0].contains("@wl4_2") && shut[0].contains("tcp reset"));
        assert!(!v.to_string().contains(r#""name":"wl4_1""#));
    }

    /// A listener moved to the user-space path, and a stopping table: nothing new is
    /// translated, established connections keep their mark's chain.
    #[test]
    fn a_moved_listener_or_a_stopping_table_translates_nothing_new_but_keeps_its_connections() {
        for (translate, accept_new) in [(false, true), (true, false)] {
            let mut l = listener(1, 0x0700_0001, Whitelist::Disabled);
            l.translate = translate;
            let v = json(&ruleset("t", 0x0700_0000, &[l], accept_new));
            assert!(rules_of(&v, "nat_pre").is_empty() && rules_of(&v, "nat_post").is_empty());
            assert!(rules_of(&v, "f_pre")[1].contains(r#"[117440513,{"goto":{"target":"ep_1"}}]"#));
        }
    }

    #[test]
    fn only_this_tables_marks_are_checked_and_unknown_ones_are_reset() {
        let l = listener(1, 0x0700_0001, Whitelist::Disabled);
        let v = json(&ruleset("t", 0x0700_0000, &[l], true));
        for chain in ["f_pre", "f_out"] {
            let r = rules_of(&v, chain);
            assert!(
                r[0].contains(r#"{"&":[{"ct":{"key":"mark"}},4278190080]}"#)
                    && r[0].contains(r#""right":117440512"#)
                    && r[0].contains("return"),
                "{}",
                r[0]
            );
            // After the goto: a packet whose mark no live listener carries is reset, unless
            // it is a reset itself.
            let last = r.last().unwrap();
            assert!(last.contains(r#""op":"!=","right":"rst""#) && last.contains("tcp reset"));
        }
        // Packets to loopback are checked where they enter again, not twice.
        assert!(rules_of(&v, "f_out")[1].contains(r#""right":"lo""#));
        // With no listener at all, every marked packet is reset.
        let empty = json(&ruleset("t", 0x0700_0000, &[], true));
        assert_eq!(rules_of(&empty, "f_pre").len(), 2);
    }

    #[test]
    fn listeners_that_add_to_the_stream_or_cross_namespaces_stay_in_user_space() {
        let key = ListenerKey {
            netns: None,
            addr: "10.0.0.5:80".parse().unwrap(),
        };
        let cfg = ListenerConfig {
            endpoint_id: "e".into(),
            marker_id: 1,
            vni: 0,
            backend: "10.1.0.10:8080".parse().unwrap(),
            backend_netns: None,
            tcp_proxy: TcpProxy::Close,
            whitelist: Whitelist::Disabled,
        };
        assert_eq!(userspace_reason(&key, &cfg), None);
        let proxy = ListenerConfig {
            tcp_proxy: TcpProxy::ProxyOpen,
            ..cfg.clone()
        };
        assert!(userspace_reason(&key, &proxy).unwrap().contains("PROXY"));
        let ns = ListenerConfig {
            backend_netns: Some("vpc-b".into()),
            ..cfg.clone()
        };
        assert!(userspace_reason(&key, &ns).unwrap().contains("namespace"));
        let v6 = ListenerConfig {
            backend: "[fd00::1]:80".parse().unwrap(),
            ..cfg
        };
        assert!(userspace_reason(&key, &v6).unwrap().contains("famil"));
    }

    #[test]
    fn conntrack_entries_are_parsed_and_cut_by_mark_and_source() {
        let text = "\
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.50 dst=127.16.0.1 sport=40000 dport=8080 src=127.16.0.2 dst=127.0.0.1 sport=9000 dport=40000 [ASSURED] mark=117440513 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.60 dst=127.16.0.1 sport=40001 dport=8080 src=127.16.0.2 dst=127.0.0.1 sport=9000 dport=40001 [ASSURED] mark=117440513 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.50 dst=127.16.0.9 sport=40002 dport=80 src=127.16.0.9 dst=127.0.0.50 sport=80 dport=40002 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.50 dst=127.16.0.1 sport=40003 dport=8080 src=127.16.0.2 dst=127.0.0.1 sport=9000 dport=40003 [ASSURED] mark=134217729 zone=0 use=2
ipv4     2 udp      17 29 src=127.0.0.1 dst=127.0.0.53 sport=1 dport=53 src=127.0.0.53 dst=127.0.0.1 sport=53 dport=1 mark=117440513 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.50 dst=127.16.0.2 sport=40004 dport=8080 src=127.16.0.2 dst=127.0.0.1 sport=9000 dport=40004 [ASSURED] mark=117440514 zone=0 use=2
ipv4     2 tcp      6 120 TIME_WAIT src=127.0.0.60 dst=127.16.0.1 sport=40005 dport=8080 src=127.16.0.2 dst=127.0.0.1 sport=9000 dport=40005 [ASSURED] mark=117440513 zone=0 use=2
ipv4     2 tcp      6 120 FIN_WAIT src=127.0.0.60 dst=127.16.0.1 sport=40006 dport=8080 src=127.16.0.2 dst=127.0.0.1 sport=9000 dport=40006 [ASSURED] mark=117440513 zone=0 use=2
ipv4     2 tcp      6 10 CLOSE src=127.0.0.50 dst=127.16.0.2 sport=40007 dport=8080 src=127.16.0.2 dst=127.0.0.1 sport=9000 dport=40007 [ASSURED] mark=117440514 zone=0 use=2
";
        let t = parse_conntrack(text);
        assert_eq!(t.len(), 8, "tcp only");
        assert!(t[5].is_over() && t[7].is_over() && !t[6].is_over());
        assert_eq!(t[0].original.0, "127.0.0.50:40000".parse().unwrap());
        assert_eq!(
            t[0].reply,
            (
                "127.16.0.2:9000".parse().unwrap(),
                "127.0.0.1:40000".parse().unwrap()
            )
        );
        let mut live = HashMap::new();
        live.insert(117440513, Some(vec!["127.0.0.50/32".parse().unwrap()]));
        let cut: Vec<u16> = to_cut(&t, 0x0700_0000, &live)
            .iter()
            .map(|t| t.original.0.port())
            .collect();
        // 40001: source no longer admitted; 40004: its listener is gone; 40006: half-closed,
        // source no longer admitted. 40002 is not translated, 40003 belongs to another table,
        // 40005 and 40007 are over (their ports may be reused by new connections).
        assert_eq!(cut, vec![40001, 40004, 40006]);
    }

    #[test]
    fn only_a_narrower_plan_needs_a_cut() {
        let open = listener(1, 0x0700_0001, Whitelist::Disabled);
        let wl = |nets: &[&str]| {
            Whitelist::parse(
                true,
                &nets.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let some = listener(1, 0x0700_0001, wl(&["10.2.0.0/24"]));
        let wider = listener(1, 0x0700_0001, wl(&["10.2.0.0/16"]));
        let other = listener(1, 0x0700_0001, wl(&["10.3.0.0/24"]));
        let moved = listener(1, 0x0700_0002, Whitelist::Disabled);
        assert!(!narrows(&[], std::slice::from_ref(&open)));
        assert!(!narrows(
            std::slice::from_ref(&some),
            std::slice::from_ref(&wider)
        ));
        assert!(!narrows(
            std::slice::from_ref(&some),
            std::slice::from_ref(&open)
        ));
        assert!(narrows(
            std::slice::from_ref(&open),
            std::slice::from_ref(&some)
        ));
        assert!(narrows(
            std::slice::from_ref(&wider),
            std::slice::from_ref(&some)
        ));
        assert!(narrows(
            std::slice::from_ref(&some),
            std::slice::from_ref(&other)
        ));
        assert!(narrows(
            std::slice::from_ref(&open),
            std::slice::from_ref(&moved)
        ));
    }

    #[test]
    fn table_names_carry_pid_and_tag() {
        assert_eq!(parse_table_name("vpcep_1234_0a"), Some((1234, 10)));
        assert_eq!(parse_table_name("vpcep_x"), None);
    }

    #[test]
    fn of_two_processes_that_picked_one_tag_the_higher_pid_picks_again() {
        let tables = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let both = tables(&["vpcep_100_0a", "vpcep_200_0a", "vpcep_300_0b"]);
        assert!(yields_tag(200, 0x0a, &both));
        assert!(!yields_tag(100, 0x0a, &both), "the lower pid keeps it");
        assert!(!yields_tag(300, 0x0b, &both), "a tag of its own");
        assert!(!yields_tag(200, 0x0a, &tables(&["vpcep_200_0a", "other"])));
    }
}
