//! TCP rendezvous and CPU collectives (torchrun's `MASTER_ADDR:MASTER_PORT` store, PyTorch gloo-style all-gather / all-reduce): rank 0 is the hub of a star.
//!
//! Every non-zero rank connects to rank 0 (retrying until the timeout, so start order does not matter) and
//! sends a hello (magic, protocol version, rank, world size). Rank 0 accepts until all `world − 1` peers have
//! joined or the timeout passes, checks that ranks are distinct and agree on the world size, and answers each
//! peer. A collective is one round trip: every peer sends its payload, rank 0 combines the payloads in rank
//! order (concatenation for a gather, an f64 sum divided by the world size for a mean) and sends the result
//! back, or an error message that every rank then reports. Each message carries an operation tag and a
//! sequence number, so ranks that drift apart (different configs) fail with a clear error instead of mixing
//! data. Every socket read and write has the timeout: a missing or dead peer gives an error, never a hang.
use crate::{Error, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 8] = b"EMOCLIPD";
const VERSION: u32 = 1;
/// Largest payload accepted in one message (guards against reading garbage as a length).
const MAX_PAYLOAD: u64 = 1 << 36;

/// Operation tags of the wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Hello = 1,
    Welcome = 2,
    Gather = 3,
    Mean = 4,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Hello => "hello",
            Op::Welcome => "welcome",
            Op::Gather => "all_gather",
            Op::Mean => "all_reduce",
        }
    }
}

enum Links {
    /// Rank 0: one stream per peer, index `r − 1` for rank `r`.
    Hub(Vec<TcpStream>),
    /// Other ranks: the stream to rank 0.
    Leaf(TcpStream),
    /// World size 1: nothing to talk to.
    Alone,
}

/// A star-shaped TCP process group (see the module documentation).
pub struct TcpGroup {
    rank: usize,
    world: usize,
    links: Links,
    seq: u64,
    timeout: Duration,
    master: String,
}

fn timeout_err(what: &str, master: &str, timeout: Duration) -> Error {
    Error::Msg(format!(
        "distributed ({master}): timed out after {:.1} s {what}; a rank is missing, stuck or was started with a \
         different WORLD_SIZE / MASTER_ADDR / MASTER_PORT (set EMOCLIP_DIST_TIMEOUT to wait longer)",
        timeout.as_secs_f64()
    ))
}

fn io_err(e: std::io::Error, what: &str, master: &str, timeout: Duration) -> Error {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timeout_err(what, master, timeout),
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::BrokenPipe
        | ErrorKind::ConnectionAborted => Error::Msg(format!(
            "distributed ({master}): connection closed {what}; that rank exited (see its own error message)"
        )),
        _ => Error::Msg(format!("distributed ({master}): {what}: {e}")),
    }
}

fn write_msg(s: &mut TcpStream, op: Op, ok: bool, seq: u64, payload: &[u8]) -> std::io::Result<()> {
    let mut head = [0u8; 18];
    head[0] = op as u8;
    head[1] = if ok { 0 } else { 1 };
    head[2..10].copy_from_slice(&seq.to_le_bytes());
    head[10..18].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    s.write_all(&head)?;
    s.write_all(payload)?;
    s.flush()
}

/// Reads one message; `Ok(Err(msg))` when the sender reported an error.
fn read_msg(s: &mut TcpStream) -> std::io::Result<(u8, bool, u64, Vec<u8>)> {
    let mut head = [0u8; 18];
    s.read_exact(&mut head)?;
    let seq = u64::from_le_bytes(head[2..10].try_into().unwrap_or_default());
    let len = u64::from_le_bytes(head[10..18].try_into().unwrap_or_default());
    if len > MAX_PAYLOAD {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("message of {len} bytes: not an emoclip peer"),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload)?;
    Ok((head[0], head[1] == 0, seq, payload))
}

fn hello(rank: usize, world: usize) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(&(rank as u64).to_le_bytes());
    v.extend_from_slice(&(world as u64).to_le_bytes());
    v
}

fn parse_hello(p: &[u8]) -> Option<(usize, usize)> {
    if p.len() != 28 || &p[..8] != MAGIC || u32::from_le_bytes(p[8..12].try_into().ok()?) != VERSION {
        return None;
    }
    Some((
        u64::from_le_bytes(p[12..20].try_into().ok()?) as usize,
        u64::from_le_bytes(p[20..28].try_into().ok()?) as usize,
    ))
}

impl TcpGroup {
    /// Joins the group: rank 0 listens on `addr:port`, the others connect to it. Fails after `timeout`.
    pub fn connect(rank: usize, world: usize, addr: &str, port: u16, timeout: Duration) -> Result<Self> {
        let master = format!("{addr}:{port}");
        if world == 0 || rank >= world {
            return Err(Error::Msg(format!("distributed: RANK {rank} is not below WORLD_SIZE {world}")));
        }
        if world == 1 {
            return Ok(Self { rank, world, links: Links::Alone, seq: 0, timeout, master });
        }
        if rank == 0 {
            let bind: Vec<SocketAddr> = match (addr, port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => return Err(Error::Msg(format!("distributed: cannot resolve MASTER_ADDR {master}: {e}"))),
            };
            // Listen on the master address if it is local, else on every interface at that port.
            let listener =
                TcpListener::bind(&bind[..]).or_else(|_| TcpListener::bind(("0.0.0.0", port))).map_err(|e| {
                    Error::Msg(format!("distributed: rank 0 cannot listen on {master}: {e} (is MASTER_PORT free?)"))
                })?;
            let master = match (port, listener.local_addr()) {
                (0, Ok(a)) => {
                    tracing::warn!(
                        "MASTER_PORT=0: rank 0 listens on {addr}:{}; start the other ranks with MASTER_PORT={}",
                        a.port(),
                        a.port()
                    );
                    format!("{addr}:{}", a.port())
                }
                _ => master,
            };
            Self::accept(listener, world, timeout, master)
        } else {
            Self::join(rank, world, addr, port, timeout)
        }
    }

    /// Rank 0 side, on an already bound listener (tests bind port 0 and hand the port to the peers).
    pub fn accept(listener: TcpListener, world: usize, timeout: Duration, master: String) -> Result<Self> {
        if world <= 1 {
            return Ok(Self { rank: 0, world: 1, links: Links::Alone, seq: 0, timeout, master });
        }
        let deadline = Instant::now() + timeout;
        listener.set_nonblocking(true).map_err(|e| Error::Msg(format!("distributed: {master}: {e}")))?;
        let mut peers: Vec<Option<TcpStream>> = (1..world).map(|_| None).collect();
        while peers.iter().any(|p| p.is_none()) {
            match listener.accept() {
                Ok((mut s, from)) => {
                    s.set_nonblocking(false).map_err(|e| Error::Msg(format!("distributed: {from}: {e}")))?;
                    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
                    s.set_read_timeout(Some(left)).ok();
                    s.set_write_timeout(Some(timeout)).ok();
                    s.set_nodelay(true).ok();
                    let (op, _, _, p) = match read_msg(&mut s) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!("distributed: ignoring a connection from {from} that sent no hello: {e}");
                            continue;
                        }
                    };
                    let Some((r, w)) = (op == Op::Hello as u8).then(|| parse_hello(&p)).flatten() else {
                        tracing::warn!("distributed: ignoring a connection from {from} that is not an emoclip rank");
                        continue;
                    };
                    let problem = if w != world {
                        Some(format!("rank {r} at {from} has WORLD_SIZE {w}, rank 0 has {world}"))
                    } else if r == 0 || r >= world {
                        Some(format!("a peer at {from} says it is rank {r}; ranks 1..{} are expected", world - 1))
                    } else if peers[r - 1].is_some() {
                        Some(format!("two processes claim rank {r} (the second from {from})"))
                    } else {
                        None
                    };
                    if let Some(msg) = problem {
                        let msg = format!("distributed ({master}): inconsistent launch: {msg}; check RANK and WORLD_SIZE of every process");
                        let _ = write_msg(&mut s, Op::Welcome, false, 0, msg.as_bytes());
                        for p in peers.iter_mut().flatten() {
                            let _ = write_msg(p, Op::Welcome, false, 0, msg.as_bytes());
                        }
                        return Err(Error::Msg(msg));
                    }
                    peers[r - 1] = Some(s);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let missing: Vec<String> = peers
                            .iter()
                            .enumerate()
                            .filter(|(_, p)| p.is_none())
                            .map(|(i, _)| (i + 1).to_string())
                            .collect();
                        return Err(timeout_err(
                            &format!("in the rendezvous waiting for rank(s) {} to connect", missing.join(", ")),
                            &master,
                            timeout,
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::Msg(format!("distributed: rank 0 accepting on {master}: {e}"))),
            }
        }
        let mut streams: Vec<TcpStream> = peers.into_iter().flatten().collect();
        for (i, s) in streams.iter_mut().enumerate() {
            s.set_read_timeout(Some(timeout)).ok();
            write_msg(s, Op::Welcome, true, 0, &[])
                .map_err(|e| io_err(e, &format!("welcoming rank {}", i + 1), &master, timeout))?;
        }
        Ok(Self { rank: 0, world, links: Links::Hub(streams), seq: 0, timeout, master })
    }

    fn join(rank: usize, world: usize, addr: &str, port: u16, timeout: Duration) -> Result<Self> {
        let master = format!("{addr}:{port}");
        let deadline = Instant::now() + timeout;
        let mut s = loop {
            let addrs: Vec<SocketAddr> = (addr, port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default();
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = addrs.iter().find_map(|a| {
                TcpStream::connect_timeout(a, left.clamp(Duration::from_millis(50), Duration::from_secs(2))).ok()
            });
            if let Some(s) = attempt {
                break s;
            }
            if Instant::now() >= deadline {
                return Err(timeout_err(&format!("(rank {rank}) connecting to rank 0"), &master, timeout));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        s.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100))))
            .ok();
        s.set_write_timeout(Some(timeout)).ok();
        s.set_nodelay(true).ok();
        write_msg(&mut s, Op::Hello, true, 0, &hello(rank, world))
            .map_err(|e| io_err(e, "sending hello to rank 0", &master, timeout))?;
        let (op, ok, _, p) = read_msg(&mut s)
            .map_err(|e| io_err(e, &format!("(rank {rank}) waiting for the other ranks to join"), &master, timeout))?;
        if !ok {
            return Err(Error::Msg(String::from_utf8_lossy(&p).into_owned()));
        }
        if op != Op::Welcome as u8 {
            return Err(Error::Msg(format!(
                "distributed ({master}): rank 0 answered the hello with message type {op}: not an emoclip rank 0"
            )));
        }
        s.set_read_timeout(Some(timeout)).ok();
        Ok(Self { rank, world, links: Links::Leaf(s), seq: 0, timeout, master })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }
    pub fn world_size(&self) -> usize {
        self.world
    }

    /// One collective round: every rank contributes `payload`; rank 0 runs `combine` on all payloads (rank
    /// order) and every rank receives its result, or its error.
    pub fn exchange(
        &mut self,
        op: Op,
        payload: Vec<u8>,
        combine: impl FnOnce(Vec<Vec<u8>>) -> std::result::Result<Vec<u8>, String>,
    ) -> Result<Vec<u8>> {
        self.seq += 1;
        let (seq, timeout, master) = (self.seq, self.timeout, self.master.clone());
        let what = |r: usize| format!("in {} #{seq} waiting for rank {r}", op.name());
        let check = |r: usize, got_op: u8, got_seq: u64| -> Result<()> {
            if got_op != op as u8 || got_seq != seq {
                return Err(Error::Msg(format!(
                    "distributed ({master}): rank {r} is out of step (sent message type {got_op} #{got_seq}, expected {} #{seq}); \
                     every rank must run the same config and code",
                    op.name()
                )));
            }
            Ok(())
        };
        match &mut self.links {
            Links::Alone => combine(vec![payload]).map_err(Error::Msg),
            Links::Leaf(s) => {
                write_msg(s, op, true, seq, &payload).map_err(|e| io_err(e, &what(0), &master, timeout))?;
                let (got_op, ok, got_seq, p) = read_msg(s).map_err(|e| io_err(e, &what(0), &master, timeout))?;
                if !ok {
                    return Err(Error::Msg(String::from_utf8_lossy(&p).into_owned()));
                }
                check(0, got_op, got_seq)?;
                Ok(p)
            }
            Links::Hub(peers) => {
                let mut all = Vec::with_capacity(peers.len() + 1);
                all.push(payload);
                let mut failure: Option<Error> = None;
                for (i, s) in peers.iter_mut().enumerate() {
                    match read_msg(s) {
                        Ok((got_op, ok, got_seq, p)) => {
                            if !ok {
                                failure = Some(Error::Msg(String::from_utf8_lossy(&p).into_owned()));
                                break;
                            }
                            if let Err(e) = check(i + 1, got_op, got_seq) {
                                failure = Some(e);
                                break;
                            }
                            all.push(p);
                        }
                        Err(e) => {
                            failure = Some(io_err(e, &what(i + 1), &master, timeout));
                            break;
                        }
                    }
                }
                let result = match failure {
                    Some(e) => Err(e),
                    None => combine(all).map_err(|m| Error::Msg(format!("distributed {}: {m}", op.name()))),
                };
                match result {
                    Ok(out) => {
                        for (i, s) in peers.iter_mut().enumerate() {
                            write_msg(s, op, true, seq, &out).map_err(|e| {
                                io_err(
                                    e,
                                    &format!("in {} #{seq} sending to rank {}", op.name(), i + 1),
                                    &master,
                                    timeout,
                                )
                            })?;
                        }
                        Ok(out)
                    }
                    Err(e) => {
                        // Tell every peer that is still listening, so all ranks stop with the same message.
                        let msg = e.to_string();
                        for s in peers.iter_mut() {
                            let _ = write_msg(s, op, false, seq, msg.as_bytes());
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// Every rank's bytes, in rank order, on every rank (length-prefixed concatenation on the wire).
    pub fn all_gather_bytes(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let out = self.exchange(Op::Gather, bytes.to_vec(), |all| {
            let mut v = Vec::new();
            for p in all {
                v.extend_from_slice(&(p.len() as u64).to_le_bytes());
                v.extend_from_slice(&p);
            }
            Ok(v)
        })?;
        let mut parts = Vec::with_capacity(self.world);
        let mut at = 0usize;
        while at < out.len() {
            let len =
                out.get(at..at + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes)
                    .ok_or_else(|| Error::Msg("distributed: truncated gather reply".into()))? as usize;
            let p = out
                .get(at + 8..at + 8 + len)
                .ok_or_else(|| Error::Msg("distributed: truncated gather reply".into()))?;
            parts.push(p.to_vec());
            at += 8 + len;
        }
        if parts.len() != self.world {
            return Err(Error::Msg(format!(
                "distributed: gather reply holds {} parts for {} ranks",
                parts.len(),
                self.world
            )));
        }
        Ok(parts)
    }

    /// Element-wise mean over ranks of an f32 buffer (summed in f64 in rank order, so every rank gets the same bits).
    pub fn all_reduce_mean_f32(&mut self, data: &[f32]) -> Result<Vec<f32>> {
        let world = self.world;
        let out = self.exchange(Op::Mean, f32_bytes(data), |all| {
            let n = all[0].len();
            if let Some((r, p)) = all.iter().enumerate().find(|(_, p)| p.len() != n) {
                return Err(format!(
                    "rank {r} has {} gradient values, rank 0 has {}; every rank must train the same model with the same frozen parts",
                    p.len() / 4,
                    n / 4
                ));
            }
            let mut acc = vec![0f64; n / 4];
            for p in &all {
                for (a, c) in acc.iter_mut().zip(p.chunks_exact(4)) {
                    *a += f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64;
                }
            }
            let mean: Vec<f32> = acc.iter().map(|a| (a / world as f64) as f32).collect();
            Ok(f32_bytes(&mean))
        })?;
        Ok(bytes_f32(&out))
    }
}

pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

pub(crate) fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
