//! `netsmith._native`: the library crate's `Tube`, scan and resolver for
//! Python. No network logic lives here: each function converts arguments,
//! runs the crate's own code on a runtime of its own with the GIL released
//! (so threads run), and turns errors into the exceptions Python
//! programmers already catch. A blocking call checks for Ctrl-C every
//! 50 ms and raises `KeyboardInterrupt`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{
    PyBrokenPipeError, PyConnectionRefusedError, PyConnectionResetError, PyEOFError, PyOSError,
    PyRuntimeError, PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::runtime::Runtime;

use netsmith::error::Error;
use netsmith::tube::{Tube, TubeError};

create_exception!(
    _native,
    Timeout,
    PyTimeoutError,
    "A receive ran out of time; `partial` holds what had arrived, which stays in the tube."
);
create_exception!(
    _native,
    Closed,
    PyEOFError,
    "The peer ended the stream before what was asked for arrived; `partial` holds what had."
);

/// How often a blocking call looks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Runs `work` on `rt` with the GIL released, waking every
/// [`SIGNAL_CHECK`] to let Python raise `KeyboardInterrupt`.
fn block<T: Send>(
    py: Python<'_>,
    rt: &Runtime,
    work: impl Future<Output = T> + Send,
) -> PyResult<T> {
    py.detach(|| {
        rt.block_on(async {
            tokio::pin!(work);
            loop {
                tokio::select! {
                    out = &mut work => return Ok(out),
                    () = tokio::time::sleep(SIGNAL_CHECK) => {
                        Python::attach(|py| py.check_signals())?;
                    }
                }
            }
        })
    })
}

/// A crate error as the `OSError` subclass its words say, or `ValueError`
/// for bad input.
fn to_py(e: Error) -> PyErr {
    let text = e.to_string();
    match e {
        Error::Usage(_) => PyValueError::new_err(text),
        _ if text.contains("refused") => PyConnectionRefusedError::new_err(text),
        _ if text.contains("reset") => PyConnectionResetError::new_err(text),
        _ if text.contains("timed out") => PyTimeoutError::new_err(text),
        _ => PyOSError::new_err(text),
    }
}

fn io_to_py(e: &std::io::Error) -> PyErr {
    use std::io::ErrorKind as K;
    let text = netsmith::error::describe_io(e);
    match e.kind() {
        K::ConnectionRefused => PyConnectionRefusedError::new_err(text),
        K::ConnectionReset | K::ConnectionAborted => PyConnectionResetError::new_err(text),
        K::BrokenPipe => PyBrokenPipeError::new_err(text),
        K::TimedOut => PyTimeoutError::new_err(text),
        _ => PyOSError::new_err(text),
    }
}

fn tube_to_py(py: Python<'_>, e: TubeError) -> PyErr {
    let (err, partial) = match &e {
        TubeError::Timeout { partial, .. } => (Timeout::new_err(e.to_string()), partial),
        TubeError::Closed { partial } => (Closed::new_err(e.to_string()), partial),
        TubeError::Io(io) => return io_to_py(io),
    };
    let _ = err.value(py).setattr("partial", PyBytes::new(py, partial));
    err
}

/// A conversation with one peer: `netsmith.connect(...)` or
/// `netsmith.spawn(...)` make one.
#[pyclass(module = "netsmith._native")]
struct NativeTube {
    /// The runtime is shared with the listener a tube was accepted from:
    /// its socket is registered with that runtime's reactor.
    inner: Mutex<Option<(Arc<Runtime>, Tube)>>,
}

/// A tube operation, boxed so that one helper can run them all.
type Op<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, TubeError>> + Send + 'a>>;

impl NativeTube {
    /// Runs `op` on the tube with the GIL released.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        op: impl for<'a> FnOnce(&'a mut Tube) -> Op<'a, T> + Send,
    ) -> PyResult<T> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the tube was in use by a call that failed"))?;
        let (rt, tube) = guard
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("the tube is closed"))?;
        match block(py, rt, op(tube))? {
            Ok(v) => Ok(v),
            Err(e) => Err(tube_to_py(py, e)),
        }
    }

    fn open(
        py: Python<'_>,
        how: impl Future<Output = netsmith::Result<Tube>> + Send,
    ) -> PyResult<Self> {
        NativeTube::open_on(py, Arc::new(runtime(None)?), how)
    }

    fn open_on(
        py: Python<'_>,
        rt: Arc<Runtime>,
        how: impl Future<Output = netsmith::Result<Tube>> + Send,
    ) -> PyResult<Self> {
        let tube = block(py, &rt, how)?.map_err(to_py)?;
        Ok(NativeTube {
            inner: Mutex::new(Some((rt, tube))),
        })
    }
}

/// A lock whose holder panicked: the object is unusable.
fn poisoned<T>(_: T) -> PyErr {
    PyRuntimeError::new_err("poisoned")
}

fn bytes(py: Python<'_>, data: Vec<u8>) -> Py<PyBytes> {
    PyBytes::new(py, &data).unbind()
}

#[pymethods]
impl NativeTube {
    /// How long each receive waits, in seconds.
    #[getter]
    fn get_timeout(&self) -> PyResult<f64> {
        let guard = self.inner.lock().map_err(poisoned)?;
        Ok(guard
            .as_ref()
            .map_or(0.0, |(_, t)| t.timeout().as_secs_f64()))
    }

    #[setter]
    fn set_timeout(&self, seconds: f64) -> PyResult<()> {
        let timeout = Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                PyValueError::new_err(format!("timeout {seconds}: give seconds above 0"))
            })?;
        let mut guard = self.inner.lock().map_err(poisoned)?;
        if let Some((_, t)) = guard.as_mut() {
            t.set_timeout(timeout);
        }
        Ok(())
    }

    /// What has arrived and not been taken.
    #[getter]
    fn buffered(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let guard = self.inner.lock().map_err(poisoned)?;
        Ok(bytes(
            py,
            guard
                .as_ref()
                .map_or_else(Vec::new, |(_, t)| t.buffered().to_vec()),
        ))
    }

    fn send(&self, py: Python<'_>, data: Vec<u8>) -> PyResult<()> {
        self.run(py, move |t| {
            Box::pin(async move { Ok(t.send(&data).await?) })
        })
    }

    fn send_line(&self, py: Python<'_>, data: Vec<u8>) -> PyResult<()> {
        self.run(py, move |t| {
            Box::pin(async move { Ok(t.send_line(&data).await?) })
        })
    }

    fn recv(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let got = self.run(py, |t| Box::pin(t.recv()))?;
        Ok(bytes(py, got))
    }

    fn recv_line(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let got = self.run(py, |t| Box::pin(t.recv_line()))?;
        Ok(bytes(py, got))
    }

    fn recv_until(&self, py: Python<'_>, delim: Vec<u8>) -> PyResult<Py<PyBytes>> {
        let got = self.run(py, move |t| {
            Box::pin(async move { t.recv_until(&delim).await })
        })?;
        Ok(bytes(py, got))
    }

    fn recv_exact(&self, py: Python<'_>, n: usize) -> PyResult<Py<PyBytes>> {
        let got = self.run(py, move |t| Box::pin(t.recv_exact(n)))?;
        Ok(bytes(py, got))
    }

    fn recv_all(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let got = self.run(py, |t| Box::pin(t.recv_all()))?;
        Ok(bytes(py, got))
    }

    fn send_line_after(
        &self,
        py: Python<'_>,
        delim: Vec<u8>,
        line: Vec<u8>,
    ) -> PyResult<Py<PyBytes>> {
        let got = self.run(py, move |t| {
            Box::pin(async move { t.send_line_after(&delim, &line).await })
        })?;
        Ok(bytes(py, got))
    }

    /// Ends our side (the peer reads EOF); receiving goes on.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |t| Box::pin(async move { Ok(t.close().await?) }))
    }

    /// Closes the connection (and ends a spawned program).
    fn close(&self) -> PyResult<()> {
        let mut guard = self.inner.lock().map_err(poisoned)?;
        if let Some((rt, tube)) = guard.take() {
            drop(tube);
            if let Ok(rt) = Arc::try_unwrap(rt) {
                rt.shutdown_background();
            }
        }
        Ok(())
    }
}

/// Connects to an endpoint of netsmith's grammar ("HOST:PORT",
/// "tls://HOST:PORT", "udp://HOST:PORT", "unix:PATH").
#[pyfunction]
#[pyo3(signature = (endpoint, pin=None, ca=None, insecure=false))]
fn connect(
    py: Python<'_>,
    endpoint: String,
    pin: Option<String>,
    ca: Option<std::path::PathBuf>,
    insecure: bool,
) -> PyResult<NativeTube> {
    let pin = pin
        .map(|p| netsmith::tls::parse_pin(&p).map_err(PyValueError::new_err))
        .transpose()?;
    let tls = netsmith::tls::ClientArgs {
        pin,
        ca,
        insecure,
        ..Default::default()
    };
    NativeTube::open(py, async move { Tube::connect_tls(&endpoint, &tls).await })
}

/// Starts a program with its stdin and stdout as the tube.
#[pyfunction]
fn spawn(py: Python<'_>, command: String) -> PyResult<NativeTube> {
    NativeTube::open(py, async move { Tube::spawn(&command) })
}

/// A bound socket waiting for a peer: `netsmith.listen(...)` makes one.
#[pyclass(module = "netsmith._native")]
struct NativeListener {
    rt: Arc<Runtime>,
    listening: Mutex<Option<netsmith::tube::Listening>>,
    /// (host, port) of an IP socket.
    #[pyo3(get)]
    address: Option<(String, u16)>,
}

#[pymethods]
impl NativeListener {
    /// Waits up to `timeout` seconds (`None`: for ever) for the next
    /// client: over UDP, the first sender.
    #[pyo3(signature = (timeout=None))]
    fn accept(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<NativeTube> {
        let wait = timeout
            .map(|t| {
                Duration::try_from_secs_f64(t).map_err(|_| {
                    PyValueError::new_err(format!("timeout {t}: give seconds, 0 or more"))
                })
            })
            .transpose()?;
        let mut guard = self.listening.lock().map_err(poisoned)?;
        let listening = guard
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("the listener is closed"))?;
        NativeTube::open_on(py, self.rt.clone(), async move {
            match wait {
                None => listening.accept().await,
                Some(wait) => tokio::time::timeout(wait, listening.accept())
                    .await
                    .unwrap_or_else(|_| {
                        Err(netsmith::Error::Network {
                            what: "accept".into(),
                            reason: format!(
                                "timed out: no client within {}",
                                netsmith::duration::show(wait)
                            ),
                        })
                    }),
            }
        })
    }

    /// Stops listening (a Unix socket's file is removed).
    fn close(&self) -> PyResult<()> {
        self.listening.lock().map_err(poisoned)?.take();
        Ok(())
    }
}

/// Listens on `endpoint`: "PORT", "ADDR:PORT", "unix:PATH" or
/// "udp://ADDR:PORT".
#[pyfunction]
fn listen(py: Python<'_>, endpoint: String) -> PyResult<NativeListener> {
    let rt = Arc::new(runtime(None)?);
    let listening = py
        .detach(|| {
            let _in = rt.enter();
            netsmith::tube::Listening::bind(&endpoint)
        })
        .map_err(to_py)?;
    let address = listening
        .local_addr()
        .map(|a| (a.ip().to_string(), a.port()));
    Ok(NativeListener {
        rt,
        listening: Mutex::new(Some(listening)),
        address,
    })
}

/// Every address of `name`, in the order connect tries them.
#[pyfunction]
fn resolve(py: Python<'_>, name: String) -> PyResult<Vec<String>> {
    let rt = runtime(None)?;
    let work = async move {
        let host = netsmith::endpoint::parse_host(&name)?;
        let answer = netsmith::net::Resolve::default().answer(&host).await?;
        Ok::<_, Error>(answer.addrs.iter().map(ToString::to_string).collect())
    };
    block(py, &rt, work)?.map_err(to_py)
}

/// A running scan; iterating yields (host, port, state, reason, rtt_ms).
#[pyclass(module = "netsmith._native")]
struct NativeScan {
    inner: Mutex<(
        Runtime,
        netsmith::scan::Scan,
        std::collections::VecDeque<netsmith::scan::Outcome>,
    )>,
}

type Row = (String, u16, String, String, Option<f64>);

#[pymethods]
impl NativeScan {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Row>> {
        let mut guard = self.inner.lock().map_err(poisoned)?;
        let (rt, scan, ready) = &mut *guard;
        if ready.is_empty() {
            let batch = block(py, rt, scan.outcomes.recv())?;
            match batch {
                Some(batch) => ready.extend(batch),
                None => return Ok(None),
            }
        }
        Ok(ready.pop_front().map(|o| {
            (
                o.ip.to_string(),
                o.port,
                o.state.as_str().to_string(),
                o.reason.to_string(),
                o.rtt.map(|d| d.as_secs_f64() * 1000.0),
            )
        }))
    }
}

/// Scans `targets` (addresses, CIDR blocks, ranges, names) on `ports`
/// ("22,80,8000-8100", "-" for all); beyond loopback only with
/// `authorized=True`.
#[pyfunction]
#[pyo3(signature = (targets, ports, authorized=false))]
fn scan(
    py: Python<'_>,
    targets: Vec<String>,
    ports: String,
    authorized: bool,
) -> PyResult<NativeScan> {
    let rt = runtime(None)?;
    let work = async move { netsmith::scan::start(&targets, &ports, authorized).await };
    let scan = block(py, &rt, work)?.map_err(to_py)?;
    Ok(NativeScan {
        inner: Mutex::new((rt, scan, std::collections::VecDeque::new())),
    })
}

/// Parses `argv` (without the program name) as netsmith's command line,
/// so a keyword of the Python API is checked exactly as its flag is; a
/// bad value is a `ValueError` with the CLI's one-line message.
fn command(argv: Vec<String>) -> PyResult<netsmith::cli::Command> {
    let line = std::iter::once("netsmith".to_string())
        .chain(argv)
        .map(std::ffi::OsString::from)
        .collect();
    netsmith::cli::Cli::parse_line(line)
        .map(|cli| cli.command)
        .map_err(|e| PyValueError::new_err(netsmith::cli::one_line(&e.render().to_string())))
}

/// A runtime with `workers` threads (`None`: the calling thread alone):
/// servers and load get one per core, a tube or a scan the one.
fn runtime(workers: Option<usize>) -> PyResult<Runtime> {
    netsmith::runtime::build(workers)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a runtime: {e}")))
}

/// (service, transport, host, port, shown) of one listening socket.
type Listening = (String, String, Option<String>, Option<u16>, String);

/// Services running in the background, on a runtime of their own.
#[pyclass(module = "netsmith._native")]
struct NativeService {
    #[pyo3(get)]
    addresses: Vec<Listening>,
    running: Mutex<Option<Running>>,
}

struct Running {
    rt: Runtime,
    stop: tokio_util::sync::CancellationToken,
    served: tokio::task::JoinHandle<netsmith::Result<String>>,
}

#[pymethods]
impl NativeService {
    /// Stops accepting, lets open connections finish (within the grace
    /// period), and returns the totals as JSON lines, one per service;
    /// `None` if already stopped.
    fn stop(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let running = self.running.lock().map_err(poisoned)?.take();
        let Some(Running { rt, stop, served }) = running else {
            return Ok(None);
        };
        stop.cancel();
        let out = block(py, &rt, served);
        rt.shutdown_background();
        match out? {
            Ok(Ok(report)) => Ok(Some(report)),
            Ok(Err(e)) => Err(to_py(e)),
            Err(e) => Err(PyRuntimeError::new_err(format!("the service failed: {e}"))),
        }
    }
}

impl Drop for NativeService {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.running.lock()
            && let Some(Running { rt, stop, .. }) = guard.take()
        {
            stop.cancel();
            rt.shutdown_background();
        }
    }
}

/// Starts `netsmith serve ARGV...` in the background: bound when this
/// returns (a port in use is an `OSError` here), serving until `stop`.
#[pyfunction]
fn serve(py: Python<'_>, argv: Vec<String>) -> PyResult<NativeService> {
    let netsmith::cli::Command::Serve(args) = command(argv)? else {
        return Err(PyValueError::new_err("not a serve command line"));
    };
    let cfg = netsmith::serve::ServeConfig::new(args, true).map_err(to_py)?;
    let rt = runtime(Some(netsmith::runtime::cores()))?;
    let bound = py
        .detach(|| {
            let _in = rt.enter();
            netsmith::serve::bind(cfg)
        })
        .map_err(to_py)?;
    let addresses = bound
        .addresses()
        .iter()
        .map(|a| {
            (
                a.service.name().to_string(),
                a.transport.to_string(),
                a.addr.map(|s| s.ip().to_string()),
                a.addr.map(|s| s.port()),
                a.shown.clone(),
            )
        })
        .collect();
    let stop = tokio_util::sync::CancellationToken::new();
    let served = rt.spawn(bound.run(stop.clone()));
    Ok(NativeService {
        addresses,
        running: Mutex::new(Some(Running { rt, stop, served })),
    })
}

/// Runs `netsmith bench ARGV...` (the caller adds nothing to print) and
/// returns its JSON report, and how many requests failed.
#[pyfunction]
#[pyo3(name = "bench")]
fn run_bench(py: Python<'_>, argv: Vec<String>) -> PyResult<(String, u64)> {
    let netsmith::cli::Command::Bench(args) = command(argv)? else {
        return Err(PyValueError::new_err("not a bench command line"));
    };
    let rt = runtime(Some(netsmith::bench::threads(&args)))?;
    let interrupt = tokio_util::sync::CancellationToken::new();
    let outcome = block(py, &rt, async {
        netsmith::bench::measure(args, true, &interrupt).await
    });
    rt.shutdown_background();
    let outcome = outcome?.map_err(to_py)?;
    Ok((outcome.json.to_string(), outcome.failed))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeTube>()?;
    m.add_class::<NativeScan>()?;
    m.add_class::<NativeService>()?;
    m.add_class::<NativeListener>()?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(spawn, m)?)?;
    m.add_function(wrap_pyfunction!(resolve, m)?)?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    m.add_function(wrap_pyfunction!(listen, m)?)?;
    m.add_function(wrap_pyfunction!(run_bench, m)?)?;
    m.add("Timeout", m.py().get_type::<Timeout>())?;
    m.add("Closed", m.py().get_type::<Closed>())?;
    Ok(())
}
