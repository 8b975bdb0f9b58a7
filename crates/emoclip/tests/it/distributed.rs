//! Data-parallel training (official `gather_features` + PyTorch DDP, `train/distributed.rs`) with simulated ranks: threads of one process joined by the TCP back-end on 127.0.0.1.
//!
//! DDP scaling, derived: every rank computes the loss `L` over the gathered `N·W` rows, with only its own rows
//! differentiable, and DDP averages the rank gradients. For an encoder parameter θ, rank r's gradient is
//! `Σ_{i∈r} ∂L/∂f_i · ∂f_i/∂θ`; the sum over ranks is the full-batch `∂L/∂θ`, so the average is `∂L/∂θ / W`.
//! `logit_scale` multiplies the whole matrix on every rank, so each rank already has the full `∂L/∂s` and the
//! average is `∂L/∂s` (factor 1). The tests assert exactly these factors against one process on the combined batch.
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use emoclip::emotionclip::EmotionClipConfig;
use emoclip::train::config::{DataSection, ModelSection, SyntheticSection};
use emoclip::train::distributed::{self, gather_features, Collective, DistEnv, Single, Tcp};
use emoclip::train::{snce_loss, SnceConfig, TrainConfig, Trainer};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A tiny training config on synthetic data with temporal dropout 0 (dropout masks cannot match between a
/// rank's half batch and one process's full batch; everything else must).
fn tiny(dir: &Path, out: &str, n: usize, batch: usize, accum: usize, max_steps: usize) -> TrainConfig {
    let model_json = dir.join("tiny_nodrop.json");
    if !model_json.exists() {
        let mut mc = EmotionClipConfig::tiny();
        mc.temporal.dropout = 0.0;
        // Ranks call this side by side: a temp name, then a rename, so no rank reads a half-written config.
        let mut tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
        std::io::Write::write_all(&mut tmp, mc.to_json().as_bytes()).unwrap();
        tmp.persist(&model_json).unwrap();
    }
    let toml = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train_tiny.toml"))
        .unwrap();
    let mut cfg = TrainConfig::from_toml_str(&toml, Path::new("configs/train_tiny.toml")).unwrap();
    cfg.data = DataSection { shards: None, synthetic: Some(SyntheticSection { n, classes: 4, seed: 5, noise: 0.5 }) };
    cfg.model = ModelSection {
        name: "tiny".into(),
        config: Some(model_json),
        subject: emoclip::emotionclip::SubjectMode::Sap,
        temporal: emoclip::emotionclip::TemporalFusion::Transformer,
    };
    cfg.batch_size = batch;
    cfg.grad_accum = accum;
    cfg.max_steps = Some(max_steps);
    cfg.warmup_steps = 1;
    cfg.checkpoint_every = 0;
    cfg.out_dir = dir.join(out);
    cfg
}

/// Runs `f(rank, group)` on `world` threads joined by the TCP back-end (rank 0 on an ephemeral port).
fn with_group<T: Send>(world: usize, f: impl Fn(usize, Box<dyn Collective>) -> T + Sync) -> Vec<T> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let f = &f;
    std::thread::scope(|s| {
        let mut listener = Some(listener);
        let handles: Vec<_> = (0..world)
            .map(|r| {
                let l = if r == 0 { listener.take() } else { None };
                s.spawn(move || {
                    let g: Box<dyn Collective> = match l {
                        Some(l) => Box::new(Tcp::accept(l, world, TIMEOUT).unwrap()),
                        None => Box::new(Tcp::connect(r, world, "127.0.0.1", port, TIMEOUT).unwrap()),
                    };
                    assert_eq!((g.rank(), g.world_size(), g.backend()), (r, world, "tcp"));
                    f(r, g)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn grads_by_name(t: &Trainer, g: &GradStore) -> HashMap<String, Vec<f32>> {
    let data = t.varmap().data().lock().unwrap();
    data.iter()
        .filter_map(|(k, v)| {
            g.get(v.as_tensor()).map(|g| (k.clone(), g.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        })
        .collect()
}

fn weights(t: &Trainer) -> HashMap<String, Vec<f32>> {
    let data = t.varmap().data().lock().unwrap();
    data.iter().map(|(k, v)| (k.clone(), v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

/// max |a − b| / max(max |b|, tiny).
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn ddp_factor(name: &str, world: usize) -> f32 {
    if name == "logit_scale" {
        1.0
    } else {
        1.0 / world as f32
    }
}

fn feats(n: usize, d: usize, seed: u64) -> Tensor {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n * d)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    let t = Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap();
    t.broadcast_div(&t.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap()).unwrap()
}

/// The loss math alone: each rank's gathered SNCE loss equals the full-batch loss; the gradient w.r.t. its own
/// feature rows equals the full-batch gradient of those rows, and every rank gets the full `logit_scale` gradient.
#[test]
fn gathered_snce_equals_full_batch_loss_and_gradients() {
    for world in [2usize, 3] {
        let (b, d) = (3, 8);
        let n = b * world;
        let (v, t, e) = (feats(n, d, 1), feats(n, d, 2), (feats(n, 7, 3) * 4.0).unwrap());
        let cfg = SnceConfig::default();
        // Reference: one process, full batch.
        let (vv, tv, sv) = (
            Var::from_tensor(&v).unwrap(),
            Var::from_tensor(&t).unwrap(),
            Var::from_tensor(&Tensor::new(2.3f32, &Device::Cpu).unwrap()).unwrap(),
        );
        let full = snce_loss(vv.as_tensor(), tv.as_tensor(), sv.as_tensor(), &e, &cfg).unwrap();
        let g = full.backward().unwrap();
        let full_loss = full.to_scalar::<f32>().unwrap();
        let gv = g.get(vv.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let gt = g.get(tv.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let gs = g.get(sv.as_tensor()).unwrap().to_scalar::<f32>().unwrap();

        let per_rank = with_group(world, |r, mut c| {
            let (lv, lt) = (
                Var::from_tensor(&v.narrow(0, r * b, b).unwrap()).unwrap(),
                Var::from_tensor(&t.narrow(0, r * b, b).unwrap()).unwrap(),
            );
            let ls = Var::from_tensor(&Tensor::new(2.3f32, &Device::Cpu).unwrap()).unwrap();
            let av = gather_features(c.as_mut(), lv.as_tensor()).unwrap();
            let at = gather_features(c.as_mut(), lt.as_tensor()).unwrap();
            let ae = c.all_gather(&e.narrow(0, r * b, b).unwrap()).unwrap();
            assert_eq!(av.dims(), &[n, d]);
            let loss = snce_loss(&av, &at, ls.as_tensor(), &ae, &cfg).unwrap();
            let g = loss.backward().unwrap();
            (
                loss.to_scalar::<f32>().unwrap(),
                g.get(lv.as_tensor()).unwrap().to_vec2::<f32>().unwrap(),
                g.get(lt.as_tensor()).unwrap().to_vec2::<f32>().unwrap(),
                g.get(ls.as_tensor()).unwrap().to_scalar::<f32>().unwrap(),
            )
        });
        for (r, (loss, lgv, lgt, lgs)) in per_rank.iter().enumerate() {
            assert!(
                (loss - full_loss).abs() <= 1e-6 * full_loss.abs().max(1.0),
                "W={world} rank {r}: loss {loss} vs {full_loss}"
            );
            let rows = |g: &Vec<Vec<f32>>| g[r * b..(r + 1) * b].concat();
            assert!(rel_err(&lgv.concat(), &rows(&gv)) < 1e-5, "W={world} rank {r}: video feature gradient");
            assert!(rel_err(&lgt.concat(), &rows(&gt)) < 1e-5, "W={world} rank {r}: text feature gradient");
            assert!(
                (lgs - gs).abs() <= 1e-5 * gs.abs().max(1e-3),
                "W={world} rank {r}: logit_scale gradient {lgs} vs {gs}"
            );
        }
        assert!(gs.abs() > 1e-4 && gv.concat().iter().any(|x| x.abs() > 1e-4), "vacuous: zero gradients");
    }
}

/// The trainer: W ranks on batch b see the loss and (DDP-scaled) gradients of one process on batch W·b.
#[test]
fn trainer_gradients_match_full_batch_with_ddp_scaling() {
    let dir = tempfile::tempdir().unwrap();
    for world in [2usize, 3] {
        let b = 2;
        let n = 12;
        let mut single = Trainer::new(tiny(dir.path(), "ref", n, b * world, 1, 2), Device::Cpu, false).unwrap();
        let (g_ref, loss_ref) = single.compute_gradients().unwrap();
        let g_ref = grads_by_name(&single, &g_ref);
        let per_rank = with_group(world, |_r, c| {
            let mut t = Trainer::new_distributed(tiny(dir.path(), "dist", n, b, 1, 2), Device::Cpu, false, c).unwrap();
            assert_eq!(t.steps_per_epoch(), n / (b * world));
            let (g, loss) = t.compute_gradients().unwrap();
            (loss, grads_by_name(&t, &g))
        });
        let (loss0, g0) = &per_rank[0];
        assert!(
            (loss0 - loss_ref).abs() < 1e-5 * loss_ref.abs(),
            "W={world}: loss {loss0} vs single-process {loss_ref}"
        );
        let mut worst = (0f32, String::new());
        for (name, want) in &g_ref {
            let Some(got) = g0.get(name) else { continue };
            let f = ddp_factor(name, world);
            let scaled: Vec<f32> = want.iter().map(|x| x * f).collect();
            let e = rel_err(got, &scaled);
            if e > worst.0 {
                worst = (e, name.clone());
            }
            if want.iter().any(|x| x.abs() > 1e-6) {
                // The factor is really applied (not 1): the unscaled gradient is far off for encoder weights.
                if name != "logit_scale" {
                    assert!(rel_err(got, want) > 0.3, "W={world} {name}: gradient not scaled by 1/W");
                }
            }
        }
        println!(
            "W={world}: loss {loss0:.6} (single {loss_ref:.6}); worst gradient rel. error {:.2e} ({})",
            worst.0, worst.1
        );
        assert!(
            worst.0 < 2e-4,
            "W={world}: {} gradient differs from the DDP-scaled full-batch gradient by {:.2e}",
            worst.1,
            worst.0
        );
        assert!(
            g0.contains_key("logit_scale") && g0.len() == g_ref.len(),
            "W={world}: trainable gradients {} vs {}",
            g0.len(),
            g_ref.len()
        );
        // Every rank holds the same averaged gradient and the same loss, bit for bit.
        for (r, (l, g)) in per_rank.iter().enumerate().skip(1) {
            assert_eq!(l.to_bits(), loss0.to_bits(), "rank {r} loss");
            assert!(g.iter().all(|(k, v)| g0[k] == *v), "rank {r} gradients differ from rank 0");
        }
    }
}

/// A few optimiser steps (across an epoch boundary, with accumulation) on 2 ranks equal one process on the
/// combined batch with the DDP gradient scaling; only rank 0 writes; a resumed distributed run is exact.
#[test]
fn two_rank_training_equals_single_process_with_ddp_scaling() {
    let dir = tempfile::tempdir().unwrap();
    let (world, b, accum, n, steps) = (2usize, 2usize, 2usize, 16usize, 4usize);
    // Reference: one process, batch W·b, gradients scaled as DDP + the official loss scale them.
    let mut single = Trainer::new(tiny(dir.path(), "ref", n, b * world, accum, steps), Device::Cpu, false).unwrap();
    let w0 = weights(&single);
    let mut ref_losses = Vec::new();
    for _ in 0..steps {
        let (mut g, loss) = single.compute_gradients().unwrap();
        ref_losses.push(loss);
        let data = single.varmap().data().lock().unwrap();
        for (name, var) in data.iter() {
            if let Some(t) = g.get(var.as_tensor()) {
                let scaled = (t * ddp_factor(name, world) as f64).unwrap();
                g.insert(var.as_tensor(), scaled);
            }
        }
        drop(data);
        single.apply_gradients(&g).unwrap();
    }
    let w_ref = weights(&single);

    let out = |r: usize| if r == 0 { "dist".to_string() } else { format!("dist-rank{r}") };
    let runs = with_group(world, |r, c| {
        let mut t =
            Trainer::new_distributed(tiny(dir.path(), &out(r), n, b, accum, steps), Device::Cpu, false, c).unwrap();
        assert_eq!(t.steps_per_epoch(), 2);
        let mut losses = Vec::new();
        t.run(None, |m| losses.push(m.loss)).unwrap();
        assert_eq!(t.step(), steps);
        (losses, weights(&t))
    });
    let (losses0, w_dist) = &runs[0];
    assert_eq!(runs[1].1, *w_dist, "the two ranks' weights differ");
    for (s, (a, r)) in losses0.iter().zip(&ref_losses).enumerate() {
        assert!((a - r).abs() < 1e-4 * r.abs(), "step {}: distributed loss {a} vs single {r}", s + 1);
    }
    let maxabs = |x: &mut dyn Iterator<Item = f32>| x.fold(0f32, |m, v| m.max(v.abs()));
    let mut worst = (0f32, String::new());
    for (k, v) in w_dist {
        // The key third of an attention `in_proj_bias` has a zero gradient in exact arithmetic (softmax is
        // shift-invariant per query), so AdamW turns float noise into ±lr steps in both runs: not comparable.
        let keep = |i: usize| !k.ends_with("in_proj_bias") || !(v.len() / 3..2 * v.len() / 3).contains(&i);
        let diff = maxabs(&mut v.iter().zip(&w_ref[k]).enumerate().filter(|(i, _)| keep(*i)).map(|(_, (a, b))| a - b));
        let moved =
            maxabs(&mut w_ref[k].iter().zip(&w0[k]).enumerate().filter(|(i, _)| keep(*i)).map(|(_, (a, b))| a - b));
        let rel = if moved > 0.0 {
            diff / moved
        } else if diff > 0.0 {
            f32::INFINITY
        } else {
            0.0
        };
        if rel > worst.0 {
            worst = (rel, k.clone());
        }
    }
    println!(
        "2 ranks × {b} vs 1 × {}: worst weight difference / weight change {:.2e} ({})",
        b * world,
        worst.0,
        worst.1
    );
    // Measured 8.4e-4 (an MLP weight): AdamW's m/√v amplifies the ~1e-6 relative float differences of entries
    // whose gradient is near zero. A wrong shard, gather slot or scaling gives differences of order 1.
    assert!(
        worst.0 < 5e-3,
        "{}: distributed weights differ from single-process DDP-scaled training ({:.2e} of the update)",
        worst.1,
        worst.0
    );
    assert!(w_ref.iter().any(|(k, v)| v != &w0[k]), "vacuous: training did not move the weights");
    // Only rank 0 wrote metrics, checkpoint and plot.
    assert!(
        dir.path().join("dist/metrics.jsonl").is_file()
            && dir.path().join(format!("dist/ckpt-{steps}/model.safetensors")).is_file()
    );
    assert!(dir.path().join("dist/loss.svg").is_file());
    assert!(!dir.path().join("dist-rank1").exists(), "rank 1 wrote files");
    assert_eq!(std::fs::read_to_string(dir.path().join("dist/metrics.jsonl")).unwrap().lines().count(), steps);

    // Resume: 2 ranks sharing out_dir stop at step 2, restart with --resume and finish: bit-identical weights.
    let half = with_group(world, |_r, c| {
        let mut cfg = tiny(dir.path(), "resume", n, b, accum, steps);
        cfg.checkpoint_every = 2;
        let mut t = Trainer::new_distributed(cfg, Device::Cpu, false, c).unwrap();
        t.run(Some(2), |_| {}).unwrap();
        t.step()
    });
    assert_eq!(half, vec![2, 2]);
    let resumed = with_group(world, |_r, c| {
        let mut cfg = tiny(dir.path(), "resume", n, b, accum, steps);
        cfg.checkpoint_every = 2;
        let mut t = Trainer::new_distributed(cfg, Device::Cpu, true, c).unwrap();
        assert_eq!(t.step(), 2);
        t.run(None, |_| {}).unwrap();
        weights(&t)
    });
    for w in &resumed {
        assert!(
            w.iter().all(|(k, v)| v.iter().zip(&w_dist[k]).all(|(a, b)| a.to_bits() == b.to_bits())),
            "resumed distributed run differs"
        );
    }
}

/// Ranks that start from different weights or configs are refused before training.
#[test]
fn ranks_with_different_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let errs = with_group(2, |r, c| {
        let mut cfg = tiny(dir.path(), &format!("r{r}"), 8, 2, 1, 1);
        cfg.seed = r as u64; // a different init on rank 1
        Trainer::new_distributed(cfg, Device::Cpu, false, c).err().map(|e| e.to_string())
    });
    for (r, e) in errs.iter().enumerate() {
        let e = e.as_deref().unwrap_or_else(|| panic!("rank {r} accepted a different init"));
        assert!(e.contains("rank 1 starts from different weights"), "rank {r}: {e}");
    }
}

/// Short timeouts are what is under test; the assertions are on the messages (which say which wait timed out),
/// never on how long a wait took, so a loaded machine cannot fail them.
#[test]
fn missing_peer_times_out_with_a_clear_error() {
    let short = Duration::from_millis(800);
    // Rank 0 waits for a rank 1 that never comes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = Tcp::accept(listener, 2, short).err().expect("rank 0 must fail").to_string();
    assert!(e.contains("timed out") && e.contains("rank(s) 1") && e.contains("EMOCLIP_DIST_TIMEOUT"), "{e}");
    // Rank 1 waits for a rank 0 that never listens: the port is held by a socket that is bound but not listening,
    // so connections are refused and no other process can take the port meanwhile.
    let closed = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    closed.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let port = closed.local_addr().unwrap().as_socket().unwrap().port();
    let e = Tcp::connect(1, 2, "127.0.0.1", port, short).err().expect("rank 1 must fail").to_string();
    assert!(e.contains("timed out") && e.contains("connecting to rank 0"), "{e}");
    drop(closed);

    // A peer that joined but never enters the collective: rank 0 (which reads first) sees the connection close.
    let res = with_group(2, |r, mut c| {
        if r == 1 {
            return None; // drops its connection without calling all_gather
        }
        Some(
            c.all_gather(&Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap())
                .expect_err("must fail")
                .to_string(),
        )
    });
    let e = res[0].clone().unwrap();
    assert!(e.contains("connection closed") && e.contains("rank 1"), "{e}");

    // A peer that stays connected but silent: the read timeout fires. The peer holds its connection until rank 0
    // has its error (a channel, not a sleep), so the error cannot be a closed connection instead.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let read_timeout = Duration::from_secs(2);
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            let c = Tcp::connect(1, 2, "127.0.0.1", port, TIMEOUT).unwrap();
            let _ = wait.recv_timeout(TIMEOUT);
            drop(c);
        });
        let mut c0 = Tcp::accept(listener, 2, read_timeout).unwrap();
        let e = c0
            .all_gather(&Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap())
            .expect_err("must time out")
            .to_string();
        done.send(()).unwrap();
        assert!(e.contains("timed out") && e.contains("waiting for rank 1"), "{e}");
        h.join().unwrap();
    });
}

#[test]
fn inconsistent_shapes_and_world_sizes_are_errors_on_every_rank() {
    let errs = with_group(3, |r, mut c| {
        let b = if r == 2 { 3 } else { 2 };
        c.all_gather(&Tensor::zeros((b, 4), candle_core::DType::F32, &Device::Cpu).unwrap())
            .err()
            .map(|e| e.to_string())
    });
    for (r, e) in errs.iter().enumerate() {
        let e = e.as_deref().unwrap_or_else(|| panic!("rank {r} accepted unequal batches"));
        assert!(
            e.contains("rank 2 has a [3, 4] tensor, rank 0 has [2, 4]") && e.contains("same per-rank batch size"),
            "rank {r}: {e}"
        );
    }
    // Rank 1 believes WORLD_SIZE is 3 while rank 0 says 2.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::scope(|s| {
        let h = s.spawn(move || Tcp::connect(1, 3, "127.0.0.1", port, TIMEOUT).err().map(|e| e.to_string()));
        let e0 = Tcp::accept(listener, 2, TIMEOUT).err().expect("rank 0 must refuse").to_string();
        let e1 = h.join().unwrap().expect("rank 1 must be refused");
        for e in [e0, e1] {
            assert!(e.contains("rank 1") && e.contains("WORLD_SIZE 3, rank 0 has 2"), "{e}");
        }
    });
}

#[test]
fn all_reduce_averages_and_single_is_identity() {
    let out = with_group(3, |r, mut c| {
        let a = Tensor::new(&[r as f32, 1.0, -2.0 * r as f32], &Device::Cpu).unwrap();
        let m = Tensor::new(&[[r as f32 * 3.0; 2]; 2], &Device::Cpu).unwrap();
        let red = c.all_reduce_mean(&[a, m]).unwrap();
        (red[0].to_vec1::<f32>().unwrap(), red[1].to_vec2::<f32>().unwrap(), c.all_gather_bytes(&[r as u8]).unwrap())
    });
    for (a, m, bytes) in out {
        assert_eq!(a, vec![1.0, 1.0, -2.0]);
        assert_eq!(m, vec![vec![3.0; 2]; 2]);
        assert_eq!(bytes, vec![vec![0u8], vec![1], vec![2]]);
    }
    let mut s = Single;
    let x = Var::from_tensor(&feats(2, 3, 9)).unwrap();
    let g = gather_features(&mut s, x.as_tensor()).unwrap();
    assert_eq!(g.to_vec2::<f32>().unwrap(), x.as_tensor().to_vec2::<f32>().unwrap());
    assert!(g.backward().unwrap().get(x.as_tensor()).is_some(), "single-process gather must keep the gradient");
    assert_eq!((s.rank(), s.world_size()), (0, 1));
}

#[test]
fn torchrun_environment_parsing() {
    let env = |pairs: &[(&str, &str)]| {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        DistEnv::from_vars(move |k| m.get(k).cloned())
    };
    assert_eq!(env(&[]).unwrap(), None);
    let e = env(&[
        ("RANK", "1"),
        ("WORLD_SIZE", "4"),
        ("LOCAL_RANK", "1"),
        ("MASTER_ADDR", "node0"),
        ("MASTER_PORT", "29500"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        (e.rank, e.world_size, e.local_rank, e.master_addr.as_str(), e.master_port),
        (1, 4, Some(1), "node0", 29500)
    );
    assert_eq!(e.timeout, distributed::DEFAULT_TIMEOUT);
    assert_eq!(e.device_ordinal().unwrap(), 1);
    let e = env(&[("RANK", "0"), ("WORLD_SIZE", "1")]).unwrap().unwrap();
    assert_eq!((e.world_size, e.device_ordinal().unwrap()), (1, 0));
    let e = env(&[
        ("RANK", "3"),
        ("WORLD_SIZE", "4"),
        ("MASTER_ADDR", "h"),
        ("MASTER_PORT", "1234"),
        ("EMOCLIP_DIST_TIMEOUT", "2.5"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(e.timeout, Duration::from_millis(2500));
    assert!(e.device_ordinal().unwrap_err().to_string().contains("LOCAL_RANK is not set"));
    let bad = |pairs: &[(&str, &str)], want: &str| {
        let msg = env(pairs).err().unwrap_or_else(|| panic!("{pairs:?} accepted")).to_string();
        assert!(msg.contains(want), "{pairs:?}: {msg}");
    };
    let ok = [("MASTER_ADDR", "h"), ("MASTER_PORT", "29500")];
    bad(&[("RANK", "0")], "WORLD_SIZE is not");
    bad(&[("WORLD_SIZE", "2")], "RANK is not");
    bad(&[("LOCAL_RANK", "0")], "RANK and WORLD_SIZE are not");
    bad(&[("RANK", "2"), ("WORLD_SIZE", "2"), ok[0], ok[1]], "RANK=2 is not below WORLD_SIZE=2");
    bad(&[("RANK", "0"), ("WORLD_SIZE", "0")], "WORLD_SIZE=0");
    bad(&[("RANK", "x"), ("WORLD_SIZE", "2")], "RANK=\"x\" is not a non-negative integer");
    bad(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "29500")], "needs MASTER_ADDR");
    bad(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")], "needs MASTER_PORT");
    bad(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "99999")], "not a TCP port");
    // Port 0: rank 0 lets the system pick (and logs it); the other ranks need the real port.
    let e = env(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "0")])
        .unwrap()
        .unwrap();
    assert_eq!(e.master_port, 0);
    bad(&[("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "0")], "only rank 0 may pick");
    bad(&[("RANK", "1"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "2"), ok[0], ok[1]], "LOCAL_RANK=2 is larger than RANK=1");
    bad(&[("RANK", "1"), ("WORLD_SIZE", "2"), ok[0], ok[1], ("EMOCLIP_DIST_TIMEOUT", "-1")], "EMOCLIP_DIST_TIMEOUT");
    // Not launched distributed, or WORLD_SIZE=1: the single-process group (CPU, no network).
    let c = distributed::from_env(&Device::Cpu).unwrap();
    if std::env::var("WORLD_SIZE").is_err() {
        assert_eq!((c.backend(), c.world_size()), ("single", 1));
    }
}
