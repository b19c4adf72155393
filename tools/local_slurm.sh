#!/usr/bin/env bash
# A throw-away one-node Slurm cluster (slurmctld + slurmd + a private munged) living in one
# directory: for the tests of `--cmd slurm` and for trying a recipe's Slurm path on a laptop.
# Needs root and the Debian packages slurm-wlm and munge (tools/install_system_packages.sh);
# python3 picks the free ports. Starts in ~1.5 s; nothing is installed as a service.
#
#   tools/local_slurm.sh start DIR [NCPUS] [NGPUS]   # prints `export SLURM_CONF=DIR/slurm.conf`
#   SLURM_CONF=DIR/slurm.conf sbatch ...             # sbatch/srun/squeue/sinfo use the cluster
#   tools/local_slurm.sh stop DIR                    # cancels jobs, stops the daemons
#
# Sourced, it defines local_slurm_start and local_slurm_stop; start then exports SLURM_CONF.
# NCPUS defaults to the machine's (it may exceed them); NGPUS > 0 declares fake GPUs, char
# devices cloned from /dev/null, so `--gres=gpu:N` and CUDA_VISIBLE_DEVICES work without GPUs.

local_slurm_start() {
  local d ncpu ngpu mem ports sock i gres_line="" gres_types=""
  d=$(mkdir -p "$1" && cd "$1" && pwd) || return 1
  ncpu=${2:-$(nproc)} ngpu=${3:-0}
  if [ "$(id -u)" -ne 0 ]; then
    echo "local_slurm: needs root (the daemons run as SlurmUser=root)" >&2; return 1
  fi
  for i in munged slurmctld slurmd sinfo; do
    command -v "$i" >/dev/null && continue
    echo "local_slurm: '$i' not found; apt-get install -y --no-install-recommends slurm-wlm munge" >&2
    return 1
  done
  if [ -f "$d/slurmctld.pid" ] && _local_slurm_alive "$(cat "$d/slurmctld.pid")"; then
    echo "local_slurm: a cluster is already running in $d; stop it first" >&2; return 1
  fi
  mkdir -p "$d"/{munge,state,spool,log,dev}
  mem=$(awk '/^MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # MB, leaving some slack

  # munged refuses a key readable by others, and a socket in a directory that some user
  # cannot traverse (test directories are often 0700; socket paths are also limited to 107
  # bytes): the socket goes in a fresh directory under /tmp, named in DIR/munge/socket_dir.
  head -c 1024 /dev/urandom >"$d/munge/munge.key" && chmod 400 "$d/munge/munge.key"
  sock=$(mktemp -d /tmp/local_slurm_munge.XXXXXX) && chmod 755 "$sock" || return 1
  echo "$sock" >"$d/munge/socket_dir"
  sock=$sock/sock
  _local_slurm_daemon "$d" munged --foreground --key-file="$d/munge/munge.key" --socket="$sock" \
    --pid-file="$d/munge/munged.pid" --seed-file="$d/munge/seed" --log-file="$d/log/munged.log"

  # Ports chosen now, so that clusters of concurrent test runs do not collide.
  ports=$(python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))') || return 1

  if [ "$ngpu" -gt 0 ]; then  # gres File= must name char devices; regular files are refused
    for ((i = 0; i < ngpu; i++)); do
      [ -c "$d/dev/nvidia$i" ] || mknod -m 666 "$d/dev/nvidia$i" c 1 3 || return 1
    done
    echo "NodeName=localhost Name=gpu File=$d/dev/nvidia[0-$((ngpu - 1))]" >"$d/gres.conf"
    gres_types="GresTypes=gpu" gres_line="Gres=gpu:$ngpu"
  fi

  # No systemd, cgroups or accounting here: linuxproc tracking, no task plugin. The scheduler
  # settings make `sbatch --wait` return within ~1 s of a job's end instead of polling for
  # up to 32 s; config_overrides lets the node claim more CPUs than the machine has.
  cat >"$d/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=localhost
SlurmctldPort=${ports% *}
SlurmdPort=${ports#* }
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid.file
SlurmdPidFile=$d/slurmd.pid.file
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MinJobAge=5
KillWait=2
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
$gres_types
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$ncpu RealMemory=$mem $gres_line State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$d/slurm.conf"

  for i in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  if [ ! -S "$sock" ]; then
    echo "local_slurm: munged did not start; see $d/log/munged.*" >&2; local_slurm_stop "$d"; return 1
  fi
  _local_slurm_daemon "$d" slurmctld -D -f "$d/slurm.conf"
  _local_slurm_daemon "$d" slurmd -D -N localhost -f "$d/slurm.conf"
  for i in $(seq 300); do
    [ "$(sinfo -h -n localhost -o %T 2>/dev/null)" = idle ] && return 0
    sleep 0.1
  done
  echo "local_slurm: the node did not become idle in 30 s; see $d/log/" >&2
  local_slurm_stop "$d"
  return 1
}

local_slurm_stop() {
  local d f p i
  d=$(cd "$1" && pwd) || return 1
  if [ -f "$d/slurmctld.pid" ] && _local_slurm_alive "$(cat "$d/slurmctld.pid")"; then
    SLURM_CONF="$d/slurm.conf" scancel --quiet --full --user="$(id -un)"
    for i in $(seq 100); do [ -z "$(SLURM_CONF="$d/slurm.conf" squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
    SLURM_CONF="$d/slurm.conf" scontrol shutdown  # stops slurmctld and slurmd
  fi
  # slurmstepd of ending jobs still hold their spool sockets; let them go before munged does.
  for i in $(seq 100); do compgen -G "$d/spool/localhost_*" >/dev/null || break; sleep 0.1; done
  for f in slurmd slurmctld munged; do
    [ -f "$d/$f.pid" ] || continue
    p=$(cat "$d/$f.pid")
    [ "$f" = munged ] && kill "$p" 2>/dev/null
    for i in $(seq 100); do _local_slurm_alive "$p" || break; sleep 0.1; done
    _local_slurm_alive "$p" && kill -9 "$p"
    rm -f "$d/$f.pid"
  done
  if [ -f "$d/munge/socket_dir" ]; then
    f=$(cat "$d/munge/socket_dir")
    [[ $f == /tmp/local_slurm_munge.* ]] && rm -rf "$f"
    rm -f "$d/munge/socket_dir"
  fi
  if [ "${SLURM_CONF:-}" = "$d/slurm.conf" ]; then unset SLURM_CONF; fi
  return 0
}

# Starts daemon $2 (args $3...) in the foreground of its own session, so that it outlives the
# shell or test that started it, and writes its pid to DIR/$2.pid. The subshell has no job
# control even in an interactive shell, so setsid runs the daemon itself rather than forking.
_local_slurm_daemon() {
  local d=$1 name=$2
  shift
  (setsid "$@" </dev/null >>"$d/log/$name.out" 2>&1 & echo $! >"$d/$name.pid")
}

# kill -0 also succeeds for zombies, which a daemon started by a still-running shell becomes.
_local_slurm_alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != *Z* ]]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  usage="usage: $0 start DIR [NCPUS] [NGPUS] | stop DIR"
  case "${1:-} $#" in
    "start 2" | "start 3" | "start 4")
      local_slurm_start "${@:2}" || exit 1
      echo "export SLURM_CONF=$SLURM_CONF" ;;
    "stop 2") local_slurm_stop "$2" ;;
    *) echo "$usage" >&2; exit 1 ;;
  esac
fi
