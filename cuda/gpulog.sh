# Sourced by cuda/check.sh and cuda/candidates.sh: gpulog_start FILE samples
# the GPU's clocks, power, temperature and the reasons its clocks are held
# back every 200 ms into FILE (CSV) until gpulog_stop, to set beside
# cuda-check's ResNet-50 steps in the order they ran (a stretch of slow
# steps: the GPU's clocks, or not). Without nvidia-smi it does nothing.
gpulog_pid=
gpulog_start() {
  command -v nvidia-smi >/dev/null || return 0
  local fields=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu reasons
  # The reasons field was renamed (drivers from 535 on); older ones know the first name.
  for reasons in clocks_event_reasons.active clocks_throttle_reasons.active; do
    if nvidia-smi --query-gpu="$reasons" --format=csv,noheader >/dev/null 2>&1; then
      fields=$fields,$reasons
      break
    fi
  done
  nvidia-smi --query-gpu="$fields" --format=csv -lms 200 >"$1" 2>&1 &
  gpulog_pid=$!
}
gpulog_stop() {
  [ -n "$gpulog_pid" ] && kill "$gpulog_pid" 2>/dev/null
  gpulog_pid=
  return 0
}
