//! Reads every tensor of a checkpoint file as data: safetensors, or a PyTorch zip pickle (`torch.save`
//! default format) through candle's pickle interpreter, which builds objects and never runs code.
use crate::{Error, Result};
use candle_core::pickle::Object;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// On-disk container of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Safetensors,
    /// `torch.save` zip archive (`.pt`, `.pth`, `.bin`).
    TorchZip,
}

/// Sniffs the container from the first bytes (extensions lie: HF `.bin` files are torch zips).
pub fn sniff(path: &Path) -> Result<FileFormat> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 16];
    let n = f.read(&mut head).map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if n >= 4 && &head[..4] == b"PK\x03\x04" {
        return Ok(FileFormat::TorchZip);
    }
    if n >= 9 && head[8] == b'{' {
        return Ok(FileFormat::Safetensors);
    }
    if n >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Err(Error::checkpoint(
            path,
            "legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it in Python with \
             `torch.save(torch.load(p, weights_only=True), p2)` or convert to safetensors",
        ));
    }
    if n == 0 {
        return Err(Error::checkpoint(path, "file is empty; download it again"));
    }
    Err(Error::checkpoint(
        path,
        "not a safetensors file or a PyTorch zip checkpoint (.pt/.pth/.bin); check the path or re-download",
    ))
}

/// All tensors in the file, on `device`. For torch pickles the state dict may sit at the top level or
/// under `model` (EmotionCLIP trainer checkpoints) or `state_dict` (open_clip training checkpoints).
pub fn read_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    match sniff(path)? {
        FileFormat::Safetensors => {
            let map = candle_core::safetensors::load(path, device).map_err(|e| {
                Error::checkpoint(
                    path,
                    format!("cannot read safetensors: {e}; the file may be truncated, re-download it"),
                )
            })?;
            Ok(map)
        }
        FileFormat::TorchZip => read_torch_zip(path, device),
    }
}

fn read_torch_zip(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let (key, refused) = state_dict_key(path)?;
    let refused_error = || {
        refused.first().map(|obj| {
            Error::checkpoint(
                path,
                format!(
                    "refused object {obj}: the pickle calls {obj}, which is not part of a PyTorch state dict{}; \
                     nothing was run (pickles are read as data). The file is not a checkpoint and may be \
                     malicious: do not open it with torch.load(weights_only=False)",
                    if refused.len() > 1 { format!(" (nor are {})", refused[1..].join(", ")) } else { String::new() }
                ),
            )
        })
    };
    let tensors = candle_core::pickle::read_all_with_key(path, key.as_deref()).map_err(|e| {
        refused_error().unwrap_or_else(|| {
            Error::checkpoint(
                path,
                format!("cannot read PyTorch checkpoint: {e}; the file may be truncated, re-download it"),
            )
        })
    })?;
    if tensors.is_empty() {
        return Err(refused_error().unwrap_or_else(|| Error::checkpoint(path, "the checkpoint holds no tensors")));
    }
    let mut out = HashMap::with_capacity(tensors.len());
    for (k, t) in tensors {
        out.insert(k, t.to_device(device)?);
    }
    Ok(out)
}

/// Python globals a `torch.save` state dict may name: tensor and storage rebuilding, ordered dicts, plain
/// containers (torch's own `weights_only` unpickler allows about the same).
fn allowed_global(module: &str, name: &str) -> bool {
    module == "torch"
        || module.starts_with("torch.")
        || matches!(
            (module, name),
            ("collections", "OrderedDict")
                | ("builtins" | "__builtin__", "set" | "frozenset" | "slice" | "bytearray" | "complex")
                | ("_codecs", "encode")
        )
}

/// The `module.name` of every global in `obj` that [`allowed_global`] does not allow, in order, once each.
fn refused_globals(obj: &Object, out: &mut Vec<String>) {
    match obj {
        Object::Class { module_name, class_name } => {
            let name = format!("{module_name}.{class_name}");
            if !allowed_global(module_name, class_name) && !out.contains(&name) {
                out.push(name);
            }
        }
        Object::Tuple(v) | Object::List(v) => v.iter().for_each(|o| refused_globals(o, out)),
        Object::Dict(kv) => kv.iter().for_each(|(k, v)| {
            refused_globals(k, out);
            refused_globals(v, out);
        }),
        Object::Reduce { callable, args } | Object::Build { callable, args } => {
            refused_globals(callable, out);
            refused_globals(args, out);
        }
        Object::PersistentLoad(o) => refused_globals(o, out),
        _ => {}
    }
}

/// Finds where the state dict is inside a torch zip: `None` for a top-level dict of tensors, or the key of
/// the nested dict (`model`, `state_dict`); and the globals the pickle names that a state dict never does
/// (reported when no tensor can be read). Rejects TorchScript archives with a fix.
fn state_dict_key(path: &Path) -> Result<(Option<String>, Vec<String>)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        Error::checkpoint(path, format!("corrupt or truncated zip archive ({e}); re-download the checkpoint"))
    })?;
    let names: Vec<String> = zip
        .file_names()
        .map(|s| s.map(|s| s.into_owned()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::checkpoint(path, format!("corrupt zip directory ({e}); re-download the checkpoint")))?;
    if names.iter().any(|n| n.ends_with("constants.pkl")) {
        return Err(Error::checkpoint(
            path,
            "this is a TorchScript archive (e.g. OpenAI's jit ViT-B-32.pt), not a state dict; use the \
             open_clip / Hugging Face weights (.safetensors or open_clip_pytorch_model.bin) instead",
        ));
    }
    let Some(pkl) = names.iter().find(|n| n.ends_with("data.pkl")) else {
        return Err(Error::checkpoint(path, "zip archive without data.pkl: not a torch.save checkpoint"));
    };
    let mut reader = std::io::BufReader::new(
        zip.by_name(pkl).map_err(|e| Error::checkpoint(path, format!("cannot open {pkl}: {e}")))?,
    );
    let mut stack = candle_core::pickle::Stack::empty();
    stack.read_loop(&mut reader).map_err(|e| Error::checkpoint(path, format!("cannot parse {pkl}: {e}")))?;
    let obj = stack.finalize().map_err(|e| Error::checkpoint(path, format!("cannot parse {pkl}: {e}")))?;
    let mut refused = Vec::new();
    refused_globals(&obj, &mut refused);
    let Object::Dict(entries) = obj else {
        // candle handles `__torch__` module objects itself.
        return Ok((None, refused));
    };
    let is_tensor = |o: &Object| matches!(o, Object::Reduce { .. } | Object::Build { .. });
    if entries.iter().any(|(_, v)| is_tensor(v)) {
        return Ok((None, refused));
    }
    for want in ["model", "state_dict", "module", "model_state_dict"] {
        for (k, v) in &entries {
            if matches!(k, Object::Unicode(s) if s == want) && matches!(v, Object::Dict(_)) {
                return Ok((Some(want.to_string()), refused));
            }
        }
    }
    let keys: Vec<String> =
        entries.iter().filter_map(|(k, _)| if let Object::Unicode(s) = k { Some(s.clone()) } else { None }).collect();
    Err(Error::checkpoint(
        path,
        format!("no state dict found: top-level keys are {keys:?}; expected tensors or a `model`/`state_dict` entry"),
    ))
}
