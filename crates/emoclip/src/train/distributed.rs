//! Data-parallel training (official `src/engine/distributed.py` + open_clip `gather_features`, PyTorch DDP): process groups, feature all-gather, gradient averaging, torchrun environment.
//!
//! The official trainer runs one process per GPU under DDP. Each process encodes its own batch, then
//! `gather_features(..., gather_with_grad=False, local_loss=False)` all-gathers the video and text features
//! (and the caption emotion logits) *without* gradient and puts the process's own, differentiable features
//! back into its slot, so every rank computes the same loss over the full `N·W × N·W` matrix but back-propagates
//! only through its local rows. DDP then averages the gradients over ranks. Consequently, relative to one
//! process computing the same loss on the combined batch, every parameter that reaches the loss only through
//! the features (all encoder weights) gets `1/W` of the full-batch gradient, while `logit_scale`, which every
//! rank uses on the whole matrix, gets the full-batch gradient (`W · ∂L/∂s / W`). [`Collective`] keeps exactly
//! those semantics; `tests/distributed.rs` asserts both factors.
//!
//! Back-ends: [`Single`] (world size 1; the trainer takes the same code path), [`Tcp`] (processes on CPU, star
//! over TCP, see [`super::rendezvous`]) and, with the `nccl` feature, [`Nccl`] (one GPU per `LOCAL_RANK`,
//! the NCCL unique id sent over the same TCP rendezvous). [`from_env`] picks one like torchrun.
use super::rendezvous::{bytes_f32, f32_bytes, TcpGroup};
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use std::time::Duration;

/// Default time a rank waits for its peers (rendezvous and every collective); `EMOCLIP_DIST_TIMEOUT` (seconds) overrides it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A process group: rank, world size, tensor all-gather and gradient averaging.
pub trait Collective {
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// Back-end name for logs (`single`, `tcp`, `nccl`).
    fn backend(&self) -> &'static str;
    /// Concatenates every rank's `[b, ...]` tensor along dim 0 in rank order (`[W·b, ...]`, no gradient).
    /// All ranks must pass the same shape; a mismatch is an error on every rank.
    fn all_gather(&mut self, t: &Tensor) -> Result<Tensor>;
    /// Element-wise mean over ranks of each tensor (PyTorch DDP's gradient average); same shapes on every rank.
    fn all_reduce_mean(&mut self, ts: &[Tensor]) -> Result<Vec<Tensor>>;
    /// Every rank's bytes, in rank order (small control messages: fingerprints, ids).
    fn all_gather_bytes(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>>;
}

/// World size 1: every collective is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn backend(&self) -> &'static str {
        "single"
    }
    fn all_gather(&mut self, t: &Tensor) -> Result<Tensor> {
        Ok(t.detach())
    }
    fn all_reduce_mean(&mut self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(ts.to_vec())
    }
    fn all_gather_bytes(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(vec![bytes.to_vec()])
    }
}

/// CPU processes over TCP (rank 0 is the hub); tensors travel as f32 and come back in their own dtype/device.
pub struct Tcp {
    group: TcpGroup,
}

impl Tcp {
    /// Joins the group at `addr:port` (rank 0 listens there).
    pub fn connect(rank: usize, world: usize, addr: &str, port: u16, timeout: Duration) -> Result<Self> {
        Ok(Self { group: TcpGroup::connect(rank, world, addr, port, timeout)? })
    }
    /// Rank 0 on an already bound listener.
    pub fn accept(listener: std::net::TcpListener, world: usize, timeout: Duration) -> Result<Self> {
        let master = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
        Ok(Self { group: TcpGroup::accept(listener, world, timeout, master)? })
    }
    pub fn group(&mut self) -> &mut TcpGroup {
        &mut self.group
    }
}

/// Shape header + f32 data of a tensor.
fn encode(t: &Tensor) -> Result<Vec<u8>> {
    let mut v = (t.rank() as u64).to_le_bytes().to_vec();
    for d in t.dims() {
        v.extend_from_slice(&(*d as u64).to_le_bytes());
    }
    v.extend_from_slice(&f32_bytes(&t.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?));
    Ok(v)
}

fn decode_dims(p: &[u8]) -> Option<(Vec<usize>, usize)> {
    let rank = u64::from_le_bytes(p.get(0..8)?.try_into().ok()?) as usize;
    let dims = (0..rank)
        .map(|i| p.get(8 + 8 * i..16 + 8 * i).and_then(|b| b.try_into().ok()).map(|b| u64::from_le_bytes(b) as usize))
        .collect::<Option<Vec<_>>>()?;
    Some((dims, 8 + 8 * rank))
}

impl Collective for Tcp {
    fn rank(&self) -> usize {
        self.group.rank()
    }
    fn world_size(&self) -> usize {
        self.group.world_size()
    }
    fn backend(&self) -> &'static str {
        "tcp"
    }
    fn all_gather(&mut self, t: &Tensor) -> Result<Tensor> {
        if t.rank() == 0 {
            return Err(Error::Shape("all_gather needs a tensor with a batch dimension".into()));
        }
        let parts = self.group.all_gather_bytes(&encode(t)?)?;
        let (dims0, _) = decode_dims(&parts[0])
            .ok_or_else(|| Error::Msg("distributed: malformed all_gather payload from rank 0".into()))?;
        let mut data = Vec::new();
        for (r, p) in parts.iter().enumerate() {
            let (dims, off) = decode_dims(p)
                .ok_or_else(|| Error::Msg(format!("distributed: malformed all_gather payload from rank {r}")))?;
            if dims != dims0 {
                return Err(Error::Shape(format!(
                    "all_gather: rank {r} has a {dims:?} tensor, rank 0 has {dims0:?}; every rank needs the same per-rank batch size"
                )));
            }
            data.extend(bytes_f32(&p[off..]));
        }
        let mut dims = dims0;
        dims[0] *= parts.len();
        Ok(Tensor::from_vec(data, dims, t.device())?.to_dtype(t.dtype())?)
    }
    fn all_reduce_mean(&mut self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut flat = Vec::new();
        for t in ts {
            flat.extend(t.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
        }
        let mean = self.group.all_reduce_mean_f32(&flat)?;
        let mut out = Vec::with_capacity(ts.len());
        let mut at = 0;
        for t in ts {
            let n = t.elem_count();
            out.push(Tensor::from_slice(&mean[at..at + n], t.shape(), t.device())?.to_dtype(t.dtype())?);
            at += n;
        }
        Ok(out)
    }
    fn all_gather_bytes(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.group.all_gather_bytes(bytes)
    }
}

/// open_clip `gather_features(gather_with_grad=False, local_loss=False)`: all ranks' rows in rank order,
/// with this rank's slot replaced by `local` itself so the gradient reaches the local encoder.
pub fn gather_features(c: &mut dyn Collective, local: &Tensor) -> Result<Tensor> {
    let all = c.all_gather(&local.detach())?;
    let (r, w, b) = (c.rank(), c.world_size(), local.dim(0)?);
    let mut parts = Vec::with_capacity(3);
    if r > 0 {
        parts.push(all.narrow(0, 0, r * b)?);
    }
    parts.push(local.clone());
    if r + 1 < w {
        parts.push(all.narrow(0, (r + 1) * b, (w - r - 1) * b)?);
    }
    Ok(if parts.len() == 1 { local.clone() } else { Tensor::cat(&parts, 0)? })
}

/// DDP's gradient synchronisation: replaces each gradient of `vars` (name order fixed by the caller) by its mean over ranks.
/// Variables without a gradient are skipped; every rank must have gradients for the same variables.
pub fn all_reduce_grads(c: &mut dyn Collective, grads: &mut GradStore, vars: &[(String, Var)]) -> Result<()> {
    let mut with: Vec<&Var> = Vec::new();
    let mut ts = Vec::new();
    for (_, v) in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            with.push(v);
            ts.push(g.clone());
        }
    }
    let reduced = c.all_reduce_mean(&ts)?;
    for (v, g) in with.into_iter().zip(reduced) {
        grads.insert(v.as_tensor(), g);
    }
    Ok(())
}

/// Errors unless every rank passes the same fingerprint (weights, optimiser position, config), naming the first rank that differs.
pub fn check_same(c: &mut dyn Collective, fingerprint: &str, what: &str) -> Result<()> {
    let all = c.all_gather_bytes(fingerprint.as_bytes())?;
    if let Some((r, _)) = all.iter().enumerate().find(|(_, f)| f.as_slice() != all[0].as_slice()) {
        return Err(Error::Msg(format!(
            "distributed: rank {r} starts from different {what} than rank 0; every rank must use the same config, init \
             checkpoint and (with --resume) see the same out_dir"
        )));
    }
    Ok(())
}

/// The torchrun environment: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistEnv {
    pub rank: usize,
    pub world_size: usize,
    /// The GPU index of this process on its node (torchrun sets it; needed for CUDA only).
    pub local_rank: Option<usize>,
    pub master_addr: String,
    pub master_port: u16,
    pub timeout: Duration,
}

impl DistEnv {
    /// Reads the process environment; `None` when neither `RANK` nor `WORLD_SIZE` is set (a plain single process).
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Same as [`DistEnv::from_env`] over any variable lookup (tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let bad = |m: String| Err(Error::Msg(format!("distributed launch environment: {m}")));
        let num = |k: &str| -> Result<Option<usize>> {
            match get(k) {
                None => Ok(None),
                Some(s) if s.trim().is_empty() => Ok(None),
                Some(s) => s.trim().parse::<usize>().map(Some).map_err(|_| {
                    Error::Msg(format!("distributed launch environment: {k}={s:?} is not a non-negative integer"))
                }),
            }
        };
        let (rank, world, local) = (num("RANK")?, num("WORLD_SIZE")?, num("LOCAL_RANK")?);
        let (rank, world) = match (rank, world) {
            (None, None) => {
                if local.is_some() {
                    return bad(
                        "LOCAL_RANK is set but RANK and WORLD_SIZE are not; set all three (as torchrun does)".into()
                    );
                }
                return Ok(None);
            }
            (Some(_), None) => return bad("RANK is set but WORLD_SIZE is not; set both (as torchrun does)".into()),
            (None, Some(_)) => return bad("WORLD_SIZE is set but RANK is not; set both (as torchrun does)".into()),
            (Some(r), Some(w)) => (r, w),
        };
        if world == 0 {
            return bad("WORLD_SIZE=0; it must be the number of processes (>= 1)".into());
        }
        if rank >= world {
            return bad(format!("RANK={rank} is not below WORLD_SIZE={world}; ranks are 0..WORLD_SIZE-1"));
        }
        if let Some(l) = local {
            if l > rank {
                return bad(format!(
                    "LOCAL_RANK={l} is larger than RANK={rank}; the local rank counts processes on this node only"
                ));
            }
        }
        let timeout = match get("EMOCLIP_DIST_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(s) => match s.trim().parse::<f64>() {
                Ok(t) if t.is_finite() && t > 0.0 => Duration::from_secs_f64(t),
                _ => return bad(format!("EMOCLIP_DIST_TIMEOUT={s:?} must be a positive number of seconds")),
            },
        };
        let addr = get("MASTER_ADDR").filter(|s| !s.trim().is_empty());
        let port = get("MASTER_PORT").filter(|s| !s.trim().is_empty());
        let (master_addr, master_port) = if world == 1 {
            (addr.unwrap_or_else(|| "127.0.0.1".into()), port.and_then(|p| p.trim().parse().ok()).unwrap_or(29500))
        } else {
            let Some(addr) = addr else {
                return bad(format!("WORLD_SIZE={world} needs MASTER_ADDR (the host of rank 0)"));
            };
            let Some(port) = port else {
                return bad(format!("WORLD_SIZE={world} needs MASTER_PORT (a free TCP port on rank 0's host)"));
            };
            // 0 (rank 0 only): rank 0 listens on a port the system picks and logs it for the other ranks.
            match port.trim().parse::<u16>() {
                Ok(p) if p > 0 || rank == 0 => (addr.trim().to_string(), p),
                Ok(_) => return bad(format!("MASTER_PORT=0 on rank {rank}: only rank 0 may pick its port; give the other ranks the port rank 0 logs")),
                _ => return bad(format!("MASTER_PORT={port:?} is not a TCP port (1-65535)")),
            }
        };
        Ok(Some(Self { rank, world_size: world, local_rank: local, master_addr, master_port, timeout }))
    }

    /// The device of this process: `cuda` becomes `cuda:LOCAL_RANK` when several processes run; CPU stays CPU.
    pub fn device_ordinal(&self) -> Result<usize> {
        match (self.local_rank, self.world_size) {
            (Some(l), _) => Ok(l),
            (None, 1) => Ok(0),
            (None, _) => Err(Error::Msg(format!(
                "distributed launch environment: LOCAL_RANK is not set (rank {} of {}); set it to this process's GPU index on its node (torchrun does)",
                self.rank, self.world_size
            ))),
        }
    }
}

/// The process group for this process from the torchrun environment: [`Single`] when not launched
/// distributed (or `WORLD_SIZE=1`), NCCL for a CUDA `device` (feature `nccl`), TCP otherwise.
pub fn from_env(device: &Device) -> Result<Box<dyn Collective>> {
    match DistEnv::from_env()? {
        None => Ok(Box::new(Single)),
        Some(env) if env.world_size == 1 => Ok(Box::new(Single)),
        Some(env) => connect(&env, device),
    }
}

/// Joins the group `env` describes (see [`from_env`]).
pub fn connect(env: &DistEnv, device: &Device) -> Result<Box<dyn Collective>> {
    if device.is_cuda() {
        #[cfg(feature = "nccl")]
        {
            return Ok(Box::new(Nccl::connect(env, device)?));
        }
        #[cfg(not(feature = "nccl"))]
        {
            return Err(Error::Msg(format!(
                "distributed training on CUDA (WORLD_SIZE={}) needs NCCL: rebuild with `--features nccl` (scripts/build_cuda.sh --nccl), or train on --device cpu",
                env.world_size
            )));
        }
    }
    tracing::info!(
        "distributed: rank {} of {} over TCP via {}:{}",
        env.rank,
        env.world_size,
        env.master_addr,
        env.master_port
    );
    Ok(Box::new(Tcp::connect(env.rank, env.world_size, &env.master_addr, env.master_port, env.timeout)?))
}

/// NCCL over cudarc: one GPU per process; rank 0 creates the unique id and sends it over the TCP rendezvous.
/// Not run in CI (no GPU); written against cudarc 0.19's `nccl::safe` API.
#[cfg(feature = "nccl")]
pub struct Nccl {
    comm: candle_core::cuda::cudarc::nccl::safe::Comm,
    device: candle_core::CudaDevice,
    /// Control plane (fingerprints); also keeps the rendezvous alive.
    control: TcpGroup,
}

#[cfg(feature = "nccl")]
impl Nccl {
    pub fn connect(env: &DistEnv, device: &Device) -> Result<Self> {
        use candle_core::cuda::cudarc::nccl::safe::{Comm, Id};
        let Device::Cuda(cuda) = device else {
            return Err(Error::Msg("NCCL needs a CUDA device".into()));
        };
        let mut control = TcpGroup::connect(env.rank, env.world_size, &env.master_addr, env.master_port, env.timeout)?;
        let nccl_err = |e: candle_core::cuda::cudarc::nccl::result::NcclError| {
            Error::Msg(format!("NCCL: {e:?} (check NCCL_DEBUG=INFO output; libnccl.so.2 must be on LD_LIBRARY_PATH)"))
        };
        let mine: Vec<u8> = if env.rank == 0 {
            Id::new().map_err(nccl_err)?.internal().iter().map(|c| *c as u8).collect()
        } else {
            Vec::new()
        };
        let ids = control.all_gather_bytes(&mine)?;
        let raw: [std::ffi::c_char; 128] = ids[0]
            .iter()
            .map(|b| *b as std::ffi::c_char)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| Error::Msg("NCCL: rank 0 sent a malformed unique id".into()))?;
        let comm = Comm::from_rank(cuda.cuda_stream(), env.rank, env.world_size, Id::uninit(raw)).map_err(nccl_err)?;
        Ok(Self { comm, device: cuda.clone(), control })
    }

    /// A contiguous f32 copy of `t` as a CUDA slice.
    fn slice_of(&self, t: &Tensor) -> Result<candle_core::cuda::cudarc::driver::CudaSlice<f32>> {
        let t = t.detach().to_dtype(DType::F32)?.contiguous()?;
        let (storage, layout) = t.storage_and_layout();
        let candle_core::Storage::Cuda(cs) = &*storage else {
            return Err(Error::Msg("NCCL collective on a tensor that is not on the GPU".into()));
        };
        let src = cs.as_cuda_slice::<f32>()?;
        let view = src.slice(layout.start_offset()..layout.start_offset() + t.elem_count());
        let mut dst = self.device.alloc_zeros::<f32>(t.elem_count())?;
        self.device.memcpy_dtod(&view, &mut dst)?;
        Ok(dst)
    }

    fn tensor_of(
        &self,
        s: candle_core::cuda::cudarc::driver::CudaSlice<f32>,
        dims: Vec<usize>,
        dtype: DType,
    ) -> Result<Tensor> {
        let storage = candle_core::Storage::Cuda(candle_core::CudaStorage::wrap_cuda_slice(s, self.device.clone()));
        Ok(Tensor::from_storage(storage, dims, candle_core::op::BackpropOp::none(), false).to_dtype(dtype)?)
    }
}

#[cfg(feature = "nccl")]
impl Collective for Nccl {
    fn rank(&self) -> usize {
        self.comm.rank()
    }
    fn world_size(&self) -> usize {
        self.comm.world_size()
    }
    fn backend(&self) -> &'static str {
        "nccl"
    }
    fn all_gather(&mut self, t: &Tensor) -> Result<Tensor> {
        // Shapes first (over TCP), so a mismatch is an error rather than an NCCL hang or garbage.
        let dims: Vec<u8> = t.dims().iter().flat_map(|d| (*d as u64).to_le_bytes()).collect();
        let all = self.control.all_gather_bytes(&dims)?;
        if let Some((r, _)) = all.iter().enumerate().find(|(_, d)| *d != &dims) {
            return Err(Error::Shape(format!("all_gather: rank {r} has a different tensor shape than rank {}; every rank needs the same per-rank batch size", self.rank())));
        }
        let send = self.slice_of(t)?;
        let mut recv = self.device.alloc_zeros::<f32>(t.elem_count() * self.world_size())?;
        self.comm.all_gather(&send, &mut recv).map_err(|e| Error::Msg(format!("NCCL all_gather: {e:?}")))?;
        let mut out_dims = t.dims().to_vec();
        out_dims[0] *= self.world_size();
        self.tensor_of(recv, out_dims, t.dtype())
    }
    fn all_reduce_mean(&mut self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        use candle_core::cuda::cudarc::nccl::safe::ReduceOp;
        if ts.is_empty() {
            return Ok(Vec::new());
        }
        // One bucket: flatten, concatenate, average in place, split.
        let flat: Vec<Tensor> = ts
            .iter()
            .map(|t| t.detach().to_dtype(DType::F32).and_then(|t| t.flatten_all()))
            .collect::<candle_core::Result<_>>()?;
        let cat = Tensor::cat(&flat, 0)?;
        let n = cat.elem_count();
        let mut buf = self.slice_of(&cat)?;
        self.comm
            .all_reduce_in_place(&mut buf, &ReduceOp::Avg)
            .map_err(|e| Error::Msg(format!("NCCL all_reduce: {e:?}")))?;
        let mean = self.tensor_of(buf, vec![n], DType::F32)?;
        let mut out = Vec::with_capacity(ts.len());
        let mut at = 0;
        for t in ts {
            let k = t.elem_count();
            out.push(mean.narrow(0, at, k)?.reshape(t.shape())?.to_dtype(t.dtype())?);
            at += k;
        }
        Ok(out)
    }
    fn all_gather_bytes(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.control.all_gather_bytes(bytes)
    }
}
