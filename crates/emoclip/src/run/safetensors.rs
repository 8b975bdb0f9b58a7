//! Safetensors files with the permissions every other output gets (0666 less the umask, as
//! [`crate::output::write_atomic`]): the safetensors writer renames a 0600 temporary file into place, which
//! other users and containers could not read.
use crate::{Error, Result};
use candle_core::Tensor;
use candle_nn::VarMap;
use std::path::Path;

/// Writes `tensors` to the safetensors file `path` (through a temporary file renamed into place) with
/// ordinary permissions (see the module documentation).
pub fn save_safetensors<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>, path: &Path) -> Result<()> {
    safetensors::tensor::serialize_to_file(tensors, None, path).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    set_new_file_mode(path)
}

/// [`save_safetensors`] of every variable in `varmap`.
pub fn save_varmap(varmap: &VarMap, path: &Path) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
    save_safetensors(data.iter().map(|(k, v)| (k.as_str(), v.as_tensor())), path)
}

/// Gives `path` the mode a newly created file gets here (0666 less the umask), read off a probe file in the
/// same directory: the umask can only be read by changing it, which would race with other threads.
fn set_new_file_mode(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let probe = tempfile::Builder::new()
            .prefix(".emoclip-mode-")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let mode = probe.as_file().metadata().map_err(|e| Error::io(probe.path(), e))?.permissions().mode() & 0o777;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
