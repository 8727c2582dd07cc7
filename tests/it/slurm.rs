//! examples/slurm on a real Slurm: a single-node cluster (munged, slurmctld, slurmd as children
//! of this test, all state in a temporary folder) runs the example job array on the shipped
//! Fashion-MNIST data, 10 classes in 3 tasks, and its dependent merge job; the merged file must
//! hold exactly the datasets of one unsharded `infoutil distill` with the same options. A
//! second case requeues an array task (as a preemption would) once it has finished a class,
//! and checks that it resumes from its finished classes to the same result.
//!
//! Slurm comes from Debian's slurm-wlm and munge packages, installed here when missing (as
//! root, unless INFOUTIL_SLURM_INSTALL=0). Where it cannot be had, the tests print a `SKIP:`
//! line and return.
//!
//! For measurements (docs/scale.md), INFOUTIL_SLURM_DISTILL_ARGS and INFOUTIL_SLURM_TASKS change
//! the first case's distill options and task count; each case prints its wall times.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_infoutil");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/slurm");
/// Fast settings: a class takes about half a second on one thread.
const FAST: &str = "--backend tract --candidates 4 --budget 48 --ipc 2";
/// Slower classes (about 1.5 s on one thread), so that an array task can be caught between two.
const SLOWER: &str = "--backend tract --candidates 8 --budget 96 --ipc 2";
const CLASSES: usize = 10;
/// Array tasks (classes 0-2, 3-5, 6-9).
const TASKS: usize = 3;
/// Whole-job bound: the slower array takes about 20 s on 2 idle cores.
const JOB_TIMEOUT: Duration = Duration::from_secs(180);

/// One cluster at a time: the node has the machine's CPUs, and two would compete for them.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// Finding (or installing) Slurm

struct Tools {
    munged: PathBuf,
    slurmctld: PathBuf,
    slurmd: PathBuf,
    /// Folder of sbatch, squeue, scontrol, sinfo, scancel.
    client_dir: PathBuf,
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn tools() -> Result<Tools, String> {
    let names = [
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "squeue",
        "scontrol",
        "sinfo",
    ];
    let missing: Vec<&str> = names.into_iter().filter(|n| find(n).is_none()).collect();
    if !missing.is_empty() {
        return Err(format!("not found: {}", missing.join(", ")));
    }
    let sbatch = find("sbatch").expect("found");
    Ok(Tools {
        munged: find("munged").expect("found"),
        slurmctld: find("slurmctld").expect("found"),
        slurmd: find("slurmd").expect("found"),
        client_dir: sbatch.parent().expect("a folder").to_path_buf(),
    })
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Slurm's tools, after installing Debian's packages where they are missing and allowed.
fn slurm() -> Result<Tools, String> {
    let why = match tools() {
        Ok(t) => return Ok(t),
        Err(why) => why,
    };
    if std::env::var("INFOUTIL_SLURM_INSTALL").as_deref() == Ok("0") {
        return Err(format!(
            "{why}; INFOUTIL_SLURM_INSTALL=0 forbids installing slurm-wlm"
        ));
    }
    if !is_root() {
        return Err(format!(
            "{why}; not root, so slurm-wlm and munge cannot be installed"
        ));
    }
    eprintln!("slurm: {why}: installing slurm-wlm and munge (apt-get)");
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "slurm-wlm",
                "munge",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null())
            .status();
        if !install() {
            return Err(format!("{why}; apt-get install slurm-wlm munge failed"));
        }
    }
    tools().map_err(|e| format!("after apt-get install slurm-wlm munge, still {e}"))
}

/// The tools, or a loud SKIP (returns None).
fn slurm_or_skip(test: &str) -> Option<Tools> {
    match slurm() {
        Ok(t) => Some(t),
        Err(why) => {
            eprintln!("SKIP: slurm tests ({test}): {why}");
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A single-node cluster

/// munged, slurmctld and slurmd as children of this process, with their state, sockets, logs
/// and configuration in `dir`. Dropping it cancels its jobs, stops the daemons by PID and
/// removes the folder.
struct Cluster {
    daemons: Vec<(&'static str, Child)>,
    conf: PathBuf,
    client_dir: PathBuf,
    node: String,
    // Last: removed after the daemons are stopped.
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

fn short_hostname() -> String {
    let out = Command::new("hostname").arg("-s").output();
    let name = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default(),
    };
    name.trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn mem_mb() -> u64 {
    let info = fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let kb: u64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("MemTotal in /proc/meminfo");
    kb / 1024
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The slurm.conf of the test cluster: no cgroups (proctrack/linuxproc; task/affinity pins each
/// task to its CPUs with sched_setaffinity, as production clusters do, so that ONNX Runtime,
/// which sizes its thread pool from the CPUs it may use, does not oversubscribe the node;
/// task/none works too), no accounting, every path inside `dir`, ports chosen free.
fn slurm_conf(dir: &Path, node: &str) -> String {
    let d = dir.display();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A little under the total, so that slurmd never reports less than configured.
    let mem = mem_mb() * 9 / 10;
    format!(
        "ClusterName=infoutiltest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.socket,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/ctld-state
SlurmdSpoolDir={d}/slurmd-spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
MinJobAge=300
KillWait=10
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP
",
        ctld = free_port(),
        slurmd = free_port(),
    )
}

impl Cluster {
    fn start(tools: &Tools) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("infoutil-slurm-")
            .tempdir()
            .expect("a temporary folder");
        // munged refuses a socket in a folder that not everyone may enter.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let node = short_hostname();
        assert!(!node.is_empty(), "no host name");
        let conf = dir.path().join("slurm.conf");
        fs::write(&conf, slurm_conf(dir.path(), &node)).unwrap();
        for sub in ["ctld-state", "slurmd-spool"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let mut cluster = Cluster {
            daemons: Vec::new(),
            conf,
            client_dir: tools.client_dir.clone(),
            node,
            dir,
        };
        cluster.start_munge(tools);
        cluster.spawn("slurmctld", Command::new(&tools.slurmctld).arg("-D"));
        cluster.wait_for("slurmctld to answer", Duration::from_secs(30), |c| {
            c.client("scontrol")
                .arg("ping")
                .output()
                .ok()
                .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"))
        });
        let node = cluster.node.clone();
        cluster.spawn(
            "slurmd",
            Command::new(&tools.slurmd).args(["-D", "-N", &node]),
        );
        cluster.wait_for("the node to be idle", Duration::from_secs(60), |c| {
            let out = c.client("sinfo").args(["-h", "-N", "-o", "%T"]).output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        cluster
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start_munge(&mut self, tools: &Tools) {
        let key = self.path("munge.key");
        let mut bytes = vec![0u8; 1024];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("/dev/urandom");
        fs::write(&key, &bytes).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).unwrap();
        let arg = |opt: &str, name: &str| format!("--{opt}={}", self.path(name).display());
        let mut cmd = Command::new(&tools.munged);
        cmd.arg("--foreground")
            .arg(arg("key-file", "munge.key"))
            .arg(arg("socket", "munge.socket"))
            .arg(arg("pid-file", "munged.pid"))
            .arg(arg("log-file", "munged.log"))
            .arg(arg("seed-file", "munged.seed"));
        self.spawn("munged", &mut cmd);
        self.wait_for("munged's socket", Duration::from_secs(10), |c| {
            c.path("munge.socket").exists()
        });
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let log = fs::File::create(self.path(&format!("{name}.out"))).unwrap();
        let child = cmd
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// A Slurm client command of this cluster.
    fn client(&self, name: &str) -> Command {
        let mut c = Command::new(self.client_dir.join(name));
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Everything a person would look at when something went wrong.
    fn diagnosis(&self) -> String {
        let mut s = String::new();
        for name in [
            "munged.out",
            "slurmctld.out",
            "slurmctld.log",
            "slurmd.out",
            "slurmd.log",
        ] {
            s += &format!("\n--- {name} (end)\n{}\n", tail(&self.path(name), 30));
        }
        if let Ok(o) = self
            .client("squeue")
            .args(["-a", "-r", "-t", "all"])
            .output()
        {
            s += &format!("\n--- squeue\n{}", String::from_utf8_lossy(&o.stdout));
        }
        s
    }

    /// Poll `ok` every 100 ms until it holds; panic with the daemons' logs after `limit`, or as
    /// soon as a daemon has died.
    fn wait_for(&mut self, what: &str, limit: Duration, mut ok: impl FnMut(&Cluster) -> bool) {
        let start = Instant::now();
        loop {
            if ok(self) {
                return;
            }
            let died = self
                .daemons
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = died {
                panic!(
                    "{name} exited ({status}) while waiting for {what}{}",
                    self.diagnosis()
                );
            }
            if start.elapsed() > limit {
                panic!("no {what} after {limit:?}{}", self.diagnosis());
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// `squeue` lines `ID STATE REASON` of `job` (an array's tasks one per line), including
    /// finished jobs.
    fn states(&self, job: &str) -> Vec<(String, String, String)> {
        let out = self
            .client("squeue")
            .args(["-h", "-a", "-r", "-t", "all", "-j", job, "-o", "%i %T %r"])
            .output()
            .expect("squeue");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace().map(str::to_string);
                Some((w.next()?, w.next()?, w.next().unwrap_or_default()))
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs first: their processes are not children of this test.
        let _ = self.client("scancel").args(["--user=root"]).output();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            let out = self.client("squeue").args(["-h", "-o", "%i"]).output();
            if out.map_or(true, |o| o.stdout.iter().all(|b| b.is_ascii_whitespace())) {
                break;
            }
            sleep(Duration::from_millis(200));
        }
        for (name, child) in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                sleep(Duration::from_millis(100));
            }
            if let Ok(None) = child.try_wait() {
                eprintln!("slurm: {name} did not stop on TERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the example

struct Submitted {
    /// Array tasks submitted.
    tasks: usize,
    array: String,
    merge: String,
    out_dir: PathBuf,
    started: Instant,
}

fn check(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// examples/slurm/submit.sh, with the test binary and `args` as DISTILL_ARGS, the classes split
/// into `tasks`, of which those in `only` (submit.sh's ARRAY), else all, are submitted.
fn submit(cluster: &Cluster, name: &str, args: &str, tasks: usize, only: &[usize]) -> Submitted {
    let array = match only {
        [] => format!("0-{}", tasks - 1),
        ids => ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    };
    let out_dir = cluster.path(name);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(cluster.client_dir.clone()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(Path::new(EXAMPLES).join("submit.sh"))
        .args(["--cpus-per-task=1", "--mem=1G"])
        .current_dir(cluster.dir.path())
        .env("SLURM_CONF", &cluster.conf)
        .env("PATH", path)
        .env("CLASSES", CLASSES.to_string())
        .env("NTASKS", tasks.to_string())
        .env("ARRAY", &array)
        .env("OUT_DIR", &out_dir)
        .env("INFOUTIL", BIN)
        .env("DISTILL_ARGS", args)
        .env("MERGE_SBATCH_ARGS", "--mem=1G")
        .output()
        .expect("bash examples/slurm/submit.sh");
    let stdout = check(&out, "examples/slurm/submit.sh");
    let id = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in submit.sh's output:\n{stdout}"))
            .trim()
            .to_string()
    };
    Submitted {
        tasks: if only.is_empty() { tasks } else { only.len() },
        array: id("ARRAY_JOB_ID="),
        merge: id("MERGE_JOB_ID="),
        out_dir,
        started,
    }
}

fn logs(dir: &Path) -> String {
    let mut s = String::new();
    let mut files: Vec<_> = fs::read_dir(dir.join("logs"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        s += &format!("\n--- {}\n{}\n", f.display(), tail(&f, 40));
    }
    s
}

/// Wall times of a submitted run, from submission.
struct Times {
    array: f64,
    merged: f64,
}

const FAILED: [&str; 8] = [
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
];

/// Poll until the merge job has completed; panic with every log if a job fails or it takes
/// longer than [`JOB_TIMEOUT`].
fn wait_done(cluster: &mut Cluster, s: &Submitted) -> Times {
    let mut array_done = None;
    let mut merged = 0.0;
    let ids = format!("{},{}", s.array, s.merge);
    cluster.wait_for("merge job to complete", JOB_TIMEOUT, |c| {
        let states = c.states(&ids);
        let bad = states.iter().find(|(_, st, why)| {
            FAILED.iter().any(|f| st.starts_with(f)) || why.contains("DependencyNeverSatisfied")
        });
        if let Some(bad) = bad {
            panic!(
                "job {bad:?} did not succeed:{}{}",
                logs(&s.out_dir),
                c.diagnosis()
            );
        }
        let tasks: Vec<_> = states.iter().filter(|(id, ..)| *id != s.merge).collect();
        if array_done.is_none()
            && tasks.len() == s.tasks
            && tasks.iter().all(|(_, st, _)| st == "COMPLETED")
        {
            array_done = Some(s.started.elapsed().as_secs_f64());
        }
        let done = states
            .iter()
            .any(|(id, st, _)| *id == s.merge && st == "COMPLETED");
        if done {
            merged = s.started.elapsed().as_secs_f64();
        }
        done
    });
    Times {
        array: array_done.unwrap_or(merged),
        merged,
    }
}

/// One unsharded run with the same options, outside Slurm; its wall time.
fn single_run(dir: &Path, args: &str) -> (PathBuf, f64) {
    let out = dir.join("single.h5");
    let start = Instant::now();
    let res = Command::new(BIN)
        .arg("distill")
        .args(args.split_whitespace())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("infoutil distill");
    check(&res, "the single infoutil distill");
    (out, start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Comparing files

fn datasets(group: &hdf5::Group, prefix: &str, out: &mut Vec<String>) {
    for name in group.member_names().unwrap() {
        let path = format!("{prefix}/{name}");
        match group.group(&name) {
            Ok(g) => datasets(&g, &path, out),
            Err(_) => out.push(path),
        }
    }
}

/// The dataset's element type, shape and stored values as bytes.
fn contents(file: &hdf5::File, path: &str) -> (String, Vec<usize>, Vec<u8>) {
    use hdf5::types::{FloatSize, IntSize, TypeDescriptor as T};
    let ds = file.dataset(path).unwrap();
    let ty = ds.dtype().unwrap().to_descriptor().unwrap();
    macro_rules! bytes {
        ($t:ty) => {
            ds.read_raw::<$t>()
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        };
    }
    let bytes: Vec<u8> = match &ty {
        T::Float(FloatSize::U4) => bytes!(f32),
        T::Float(FloatSize::U8) => bytes!(f64),
        T::Unsigned(IntSize::U1) => bytes!(u8),
        T::Unsigned(IntSize::U2) => bytes!(u16),
        T::Unsigned(IntSize::U4) => bytes!(u32),
        T::Unsigned(IntSize::U8) => bytes!(u64),
        T::Integer(IntSize::U1) => bytes!(i8),
        T::Integer(IntSize::U2) => bytes!(i16),
        T::Integer(IntSize::U4) => bytes!(i32),
        T::Integer(IntSize::U8) => bytes!(i64),
        other => panic!("{path}: element type {other} is not compared by this test; add it"),
    };
    (ty.to_string(), ds.shape(), bytes)
}

/// The two files hold the same datasets with the same types, shapes and bytes.
fn assert_same_datasets(merged: &Path, single: &Path) {
    let (a, b) = (
        hdf5::File::open(merged).unwrap(),
        hdf5::File::open(single).unwrap(),
    );
    let (mut pa, mut pb) = (Vec::new(), Vec::new());
    datasets(&a, "", &mut pa);
    datasets(&b, "", &mut pb);
    pa.sort();
    pb.sort();
    assert_eq!(
        pa, pb,
        "the merged and the single file hold different datasets"
    );
    for want in ["/images", "/labels", "/soft_labels"] {
        assert!(pa.iter().any(|p| p == want), "no {want} in {pa:?}");
    }
    for prefix in ["/provenance/", "/candidates/"] {
        assert!(
            pa.iter().any(|p| p.starts_with(prefix)),
            "no {prefix}* in {pa:?}"
        );
    }
    for p in &pa {
        let (x, y) = (contents(&a, p), contents(&b, p));
        assert_eq!((&x.0, &x.1), (&y.0, &y.1), "{p}: type and shape");
        assert!(
            x.2 == y.2,
            "{p}: the merged values differ from the single run's"
        );
    }
    eprintln!(
        "slurm: {} datasets equal byte for byte: {}",
        pa.len(),
        pa.join(" ")
    );
}

fn merge_seconds(out_dir: &Path, merge: &str) -> String {
    let log =
        fs::read_to_string(out_dir.join(format!("logs/{merge}-merge.out"))).unwrap_or_default();
    log.lines()
        .find_map(|l| l.strip_prefix("[merge] done in "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The cases

#[test]
fn the_slurm_array_and_its_merge_job_equal_one_run() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("slurm: the example job array on a real single-node Slurm cluster");
    let Some(tools) = slurm_or_skip("array and merge") else {
        return;
    };
    // For measurements (docs/scale.md): other options and task counts than the test's.
    let args = std::env::var("INFOUTIL_SLURM_DISTILL_ARGS").unwrap_or(FAST.to_string());
    let tasks = std::env::var("INFOUTIL_SLURM_TASKS").map_or(TASKS, |n| {
        n.parse().expect("INFOUTIL_SLURM_TASKS is a number")
    });
    let mut cluster = Cluster::start(&tools);
    let (single, single_s) = single_run(cluster.dir.path(), &args);
    let s = submit(&cluster, "run", &args, tasks, &[]);
    let t = wait_done(&mut cluster, &s);
    assert_same_datasets(&s.out_dir.join("all.h5"), &single);
    eprintln!(
        "slurm: {CLASSES} classes, {args}: one process {single_s:.1} s; array of {tasks} tasks \
         (1 CPU each, {} CPUs) done {:.1} s after submission, merged {:.1} s (merge job {} s)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        t.array,
        t.merged,
        merge_seconds(&s.out_dir, &s.merge)
    );
    // A failed task, as examples/slurm/README.md reruns it: that task alone (ARRAY=1, same
    // NTASKS), then a new merge job.
    let merged = s.out_dir.join("all.h5");
    fs::remove_file(s.out_dir.join("shard-1.h5")).unwrap();
    fs::remove_file(&merged).unwrap();
    let r = submit(&cluster, "run", &args, tasks, &[1]);
    wait_done(&mut cluster, &r);
    let log = fs::read_to_string(r.out_dir.join(format!("logs/{}_1.out", r.array))).unwrap();
    let want = format!(
        "classes {}-{} of {CLASSES} (task 1 of {tasks})",
        CLASSES / tasks,
        2 * CLASSES / tasks - 1
    );
    assert!(
        log.contains(&want),
        "no '{want}' in the rerun task's log:{}",
        logs(&r.out_dir)
    );
    assert_same_datasets(&merged, &single);
    eprintln!("slurm: array and merge: passed (also with task 1 rerun alone)");
}

#[test]
fn a_requeued_array_task_resumes_to_the_same_result() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("slurm: an array task requeued after its first class");
    let Some(tools) = slurm_or_skip("requeue and resume") else {
        return;
    };
    let mut cluster = Cluster::start(&tools);
    let (single, _) = single_run(cluster.dir.path(), SLOWER);
    let s = submit(&cluster, "run", SLOWER, TASKS, &[]);
    // The last task has the most classes (6-9): requeue it once it has saved one.
    let task = TASKS - 1;
    let parts = s.out_dir.join(format!("shard-{task}.h5.parts"));
    let finished = |p: &Path| -> usize {
        fs::read_dir(p).map_or(0, |r| {
            r.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.starts_with("class-") && n.ends_with(".h5")
                })
                .count()
        })
    };
    let job = format!("{}_{task}", s.array);
    let start = Instant::now();
    while finished(&parts) == 0 {
        assert!(
            start.elapsed() < JOB_TIMEOUT,
            "task {task} saved no class in {JOB_TIMEOUT:?}:{}{}",
            logs(&s.out_dir),
            cluster.diagnosis()
        );
        sleep(Duration::from_millis(20));
    }
    let out = cluster
        .client("scontrol")
        .args(["requeue", &job])
        .output()
        .unwrap();
    check(&out, &format!("scontrol requeue {job}"));
    eprintln!(
        "slurm: requeued {job} with {} finished class(es) in {}",
        finished(&parts),
        parts.display()
    );
    // A requeued job waits for its credential to expire (AuthInfo cred_expire, at least some
    // 30 s here) before it may start again; move its start time to now instead of waiting.
    cluster.wait_for(
        "the requeued task to be pending",
        Duration::from_secs(60),
        |c| c.states(&job).iter().any(|(_, st, _)| st == "PENDING"),
    );
    // Not "now": slurmd refuses to launch a job id it killed moments ago ("already killed, do
    // not launch batch job") until its cleanup of the old run is over, and the task would end
    // FAILED without having run (seen under load, a relaunch 0.4 s after the kill).
    let _ = cluster
        .client("scontrol")
        .args(["update", &format!("JobId={job}"), "StartTime=now+5"])
        .output();
    wait_done(&mut cluster, &s);
    let log = fs::read_to_string(s.out_dir.join(format!("logs/{}_{task}.out", s.array))).unwrap();
    let all_logs = || logs(&s.out_dir);
    assert!(
        log.contains("TERM: stopping distill"),
        "no TERM in the log:{}",
        all_logs()
    );
    assert!(
        log.contains("restart 1"),
        "the task did not start again:{}",
        all_logs()
    );
    let resumed: usize = log
        .lines()
        .find_map(|l| l.strip_prefix("resumed "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no 'resumed N finished class(es)' in the log:{}",
                all_logs()
            )
        });
    assert!(
        (1..4).contains(&resumed),
        "resumed {resumed} of the task's 4 classes:{}",
        all_logs()
    );
    assert!(!parts.exists(), "{} is left after the run", parts.display());
    eprintln!("slurm: task {task} resumed {resumed} finished class(es) after its requeue");
    assert_same_datasets(&s.out_dir.join("all.h5"), &single);
    eprintln!("slurm: requeue and resume: passed");
}
