# The install steps that ./run and .ci/run share. Source it, then call
#   takeone_install ROOT [EXTRA]
# to create or reuse ROOT/.venv, install the torch build that fits the machine and the package
# (editable, with EXTRA such as "test"), and activate the environment.
#
# Which torch: TAKEONE_TORCH (or ./run's --torch) is one of
#   auto  (the default) cuda where `nvidia-smi -L` lists a GPU, else cpu
#   cpu   PyTorch's CPU-only build from its CPU index (small, no CUDA libraries)
#   cuda  the build on PyPI, CUDA included (on Linux), plus the package's "gpu" extra
#   anything else: a pip requirement used as it is, e.g. "torch==2.13.0" (what CI installs)
# TAKEONE_PYTHON names the interpreter that makes the environment (default: python3; 3.11+).
#
# A second call with nothing changed (pyproject.toml, this file, the torch choice, the extra)
# installs nothing: a stamp in .venv records what was installed.

TAKEONE_TORCH_VERSION="2.13.0"
TAKEONE_CPU_INDEX="https://download.pytorch.org/whl/cpu"

takeone_torch_choice() {
  local choice="${TAKEONE_TORCH:-auto}"
  if [ "$choice" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
      choice=cuda
    else
      choice=cpu
    fi
  fi
  printf '%s\n' "$choice"
}

takeone_hash() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi
}

takeone_venv() {
  local root="$1" python="${TAKEONE_PYTHON:-python3}"
  if ! "$root/.venv/bin/python" -c '' 2>/dev/null; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "takeone: needs Python 3.11 or newer; $python is $("$python" --version 2>&1 || echo missing)" \
           "(set TAKEONE_PYTHON to another interpreter)" >&2
      return 1
    fi
    echo "takeone: creating $root/.venv"
    "$python" -m venv "$root/.venv"
  fi
  # shellcheck disable=SC1091
  . "$root/.venv/bin/activate"
}

# The installed torch build does not match the choice (cpu wanted, a CUDA build installed, or
# the reverse): pip would call it satisfied, so it goes first.
takeone_drop_other_torch() {
  local choice="$1" installed
  installed="$(python -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null)" || return 0
  if { [ "$choice" = cpu ] && [ "$(uname -s)" = Linux ] && [[ "$installed" != *+cpu ]]; } ||
     { [ "$choice" = cuda ] && [[ "$installed" = *+cpu ]]; }; then
    echo "takeone: replacing torch $installed with the $choice build"
    python -m pip uninstall -q -y torch
  fi
}

takeone_install() {
  local root="$1" extra="${2:-}" choice key stamp
  takeone_venv "$root" || return 1
  choice="$(takeone_torch_choice)"
  if [ "$choice" = cuda ]; then extra="${extra:+$extra,}gpu"; fi
  stamp="$root/.venv/.takeone-installed"
  key="$(cat "$root/pyproject.toml" "$root/scripts/install.sh" | takeone_hash | cut -c1-16) torch=$choice extra=$extra"
  if [ -f "$stamp" ] && grep -qxF "$key" "$stamp"; then
    echo "takeone: .venv is up to date (torch: $choice${extra:+, extra: $extra}); nothing to install"
    return 0
  fi
  echo "takeone: installing into .venv (torch: $choice${extra:+, extra: $extra})"
  python -m pip install -q --upgrade pip || return 1
  local torch_args
  case "$choice" in
    cpu) torch_args=("torch==$TAKEONE_TORCH_VERSION" --index-url "$TAKEONE_CPU_INDEX") ;;
    cuda) torch_args=("torch==$TAKEONE_TORCH_VERSION") ;;
    *) read -r -a torch_args <<< "$choice" ;;
  esac
  takeone_drop_other_torch "$choice"
  # torch first and pinned: an unpinned torch from PyPI would pull several GB of CUDA packages.
  python -m pip install -q "${torch_args[@]}" || return 1
  python -m pip install -q -e "$root${extra:+[$extra]}" || return 1
  # Keep the record of other choices made with the same files (./run's and .ci/run's).
  { grep -F "${key%% *} " "$stamp" 2>/dev/null | grep -vxF "$key" || true; echo "$key"; } > "$stamp.new"
  mv "$stamp.new" "$stamp"
}
