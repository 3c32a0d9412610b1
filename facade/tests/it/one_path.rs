//! One path: what production makes of an answer received over real HTTP is what the pure
//! mapping (`refunds::providers::refund_result`) makes of the same status, headers and bytes.
//!
//! Every case starts a tiny HTTP/1.1 server on loopback that answers each connection with one
//! canned answer (Optty's `/token` with a valid token), points a fresh `Refunds` client at it,
//! and compares `refunds.refund(&request)` with the pure function on the canned answer: `Ok`
//! refunds with `==`, errors field by field (kind, outcome, provider, HTTP status, provider
//! code, message and messages, retryability, `Retry-After`).
//!
//! Cases: every documented answer in `specs/<provider>/examples/refund.<status>[.<label>].json`,
//! a set of error shapes every provider must survive (gateway pages, empty and non-JSON bodies,
//! undocumented statuses, a rate limit with `Retry-After`), and provider-specific bodies the
//! specs describe but do not show (AfterPay's message array, Moyasar's field errors, OpenApp's
//! exceptions).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use refunds::{
    Answer, ErrorKind, MerchantReference, Money, OpenAppConfig, Outcome, Provider, ProviderMessage,
    Refund, RefundError, RefundRequest, Refunds,
};
use test_support::{ClientSettings, documented};
use tokio::net::{TcpListener, TcpStream};

use crate::snapshots;

/// Per-request timeout of the clients: a hang fails the case instead of stalling the suite.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Optty's token answer, as documented.
const TOKEN: &str = include_str!("../../../specs/optty/examples/token.200.json");

// ---------------------------------------------------------------------------------------------
// Canned answers and the loopback server
// ---------------------------------------------------------------------------------------------

/// One answer: status, content type, body, extra headers.
#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    body: Vec<u8>,
    /// Every header but the framing ones (`content-length`, `connection`).
    headers: Vec<(String, String)>,
}

impl Canned {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status,
            body: body.into(),
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
        }
    }

    fn json(status: u16, body: impl Into<Vec<u8>>) -> Canned {
        Canned::new(status, "application/json", body)
    }

    fn html(status: u16, body: impl Into<Vec<u8>>) -> Canned {
        Canned::new(status, "text/html", body)
    }

    fn with_header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// An answer written as HTTP in a file: the status line, headers, a blank line, then the
    /// body byte for byte (one final newline dropped, so an empty body is a blank line).
    fn parse_http(text: &[u8]) -> Canned {
        let split = text
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|at| (at, at + 2))
            .or_else(|| {
                text.windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|at| (at, at + 4))
            })
            .unwrap_or((text.len(), text.len()));
        let head = String::from_utf8_lossy(&text[..split.0]);
        let mut body = text[split.1..].to_vec();
        if body.last() == Some(&b'\n') {
            body.pop();
        }
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|status| status.parse().ok())
            .expect("a status line: HTTP/1.1 <status> <reason>");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Canned {
            status,
            body,
            headers,
        }
    }

    /// The answer as the pure function gets it: every header served except the framing ones
    /// (`content-length`, `connection`).
    fn answer(&self) -> Answer {
        let mut answer = Answer::new(self.status, self.body.clone());
        for (name, value) in &self.headers {
            answer = answer.with_header(name, value);
        }
        answer
    }

    /// The bytes on the wire.
    fn response(&self) -> Vec<u8> {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("Unknown");
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n",
            self.status,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A loopback server answering every connection with its canned answer (`/token` with
/// [`TOKEN`]); stopped when dropped.
struct Server {
    base_url: String,
    /// Requests received on any path other than `/token`.
    refund_requests: Arc<AtomicUsize>,
    /// The request line (`POST /path HTTP/1.1`) of every request, in arrival order.
    request_lines: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(canned: &Canned) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let base_url = format!("http://{}", listener.local_addr().expect("local address"));
    let refund_requests = Arc::new(AtomicUsize::new(0));
    let request_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let answers = Arc::new((canned.response(), Canned::json(200, TOKEN).response()));
    let counter = Arc::clone(&refund_requests);
    let lines = Arc::clone(&request_lines);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (answers, counter, lines) = (
                Arc::clone(&answers),
                Arc::clone(&counter),
                Arc::clone(&lines),
            );
            tokio::spawn(async move {
                // A failure here shows up as the client's error, which the case then reports.
                if let Err(err) = answer_one(stream, &answers.0, &answers.1, &counter, &lines).await
                {
                    eprintln!("canned server: {err}");
                }
            });
        }
    });
    Server {
        base_url,
        refund_requests,
        request_lines,
        task,
    }
}

/// Reads one request (head, then `content-length` bytes of body) and writes the answer for its
/// path; the connection closes when `stream` drops.
async fn answer_one(
    stream: TcpStream,
    refund: &[u8],
    token: &[u8],
    refund_requests: &AtomicUsize,
    request_lines: &std::sync::Mutex<Vec<String>>,
) -> io::Result<()> {
    let mut received = Vec::new();
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if read_some(&stream, &mut received).await? == 0 {
            return Ok(()); // closed before sending a request
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let request_line = head.lines().next().unwrap_or_default();
    request_lines.lock().unwrap().push(request_line.to_owned());
    let path = head.split_whitespace().nth(1).unwrap_or_default();
    let length: usize = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while received.len() < head_end + length {
        if read_some(&stream, &mut received).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    let answer = if path == "/token" {
        token
    } else {
        refund_requests.fetch_add(1, Ordering::SeqCst);
        refund
    };
    write_all(&stream, answer).await
}

async fn read_some(stream: &TcpStream, into: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(n) => {
                into.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Requests, clients and the comparison
// ---------------------------------------------------------------------------------------------

/// The request the answers are mapped against (as in `wire_snapshots.rs`).
fn request_for(provider: Provider) -> RefundRequest {
    documented::request(provider)
}

/// A fresh client (no remembered results) for `provider` at `base_url`; OpenApp without
/// response-signature verification, as the pure function judges it.
fn client(provider: Provider, base_url: &str) -> Refunds {
    let settings = ClientSettings {
        verify_openapp_signatures: false,
        ..ClientSettings::default()
    };
    test_support::client_of(provider, base_url, &settings)
}

/// Everything an error says, for comparison (`RefundError` has no `PartialEq`).
#[derive(Debug, PartialEq)]
struct Judged {
    kind: ErrorKind,
    outcome: Outcome,
    provider: Option<Provider>,
    http_status: Option<u16>,
    provider_code: Option<String>,
    provider_message: Option<String>,
    provider_messages: Vec<ProviderMessage>,
    is_retryable: bool,
    retry_after: Option<Duration>,
}

fn judged(err: &RefundError) -> Judged {
    Judged {
        kind: err.kind().clone(),
        outcome: err.outcome(),
        provider: err.provider(),
        http_status: err.http_status(),
        provider_code: err.provider_code().map(str::to_owned),
        provider_message: err.provider_message().map(str::to_owned),
        provider_messages: err.provider_messages().to_vec(),
        is_retryable: err.is_retryable(),
        retry_after: err.retry_after(),
    }
}

/// Runs `request` against `canned` through production (over loopback) and through the pure
/// function, asserts both say the same, and returns production's result.
async fn both_paths(
    case: &str,
    request: &RefundRequest,
    canned: &Canned,
) -> Result<Refund, RefundError> {
    let server = serve(canned).await;
    let production = client(request.provider, &server.base_url)
        .refund(request)
        .await;
    assert!(
        server.refund_requests.load(Ordering::SeqCst) >= 1,
        "{case}: production never reached the refund route: {production:?}"
    );
    let pure = refunds::providers::refund_result(request, &canned.answer());
    match (&production, &pure) {
        (Ok(sent), Ok(mapped)) => assert_eq!(
            sent, mapped,
            "{case}: production and the pure function disagree"
        ),
        (Err(sent), Err(mapped)) => assert_eq!(
            judged(sent),
            judged(mapped),
            "{case}: production (left) and the pure function (right) disagree\n\
             production: {sent}\npure:       {mapped}"
        ),
        _ => panic!(
            "{case}: production and the pure function disagree\n\
             production: {production:?}\npure:       {pure:?}"
        ),
    }
    production
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Every documented refund answer of every provider.
#[tokio::test]
async fn documented_answers_agree() {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut seen = 0;
    for provider in Provider::ALL {
        let dir = specs.join(provider.as_str()).join("examples");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for path in files {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let mut parts = name.split('.');
            let (operation, status) = (parts.next().unwrap(), parts.next().unwrap_or_default());
            let Ok(status) = status.parse::<u16>() else {
                continue; // request payloads
            };
            if operation != "refund" {
                continue; // Optty's token answer is served on /token, not judged
            }
            let request = request_for(provider);
            let body = documented::answer(&request, &std::fs::read_to_string(&path).unwrap());
            let case = format!("{provider} {name}");
            let result = both_paths(&case, &request, &Canned::json(status, body)).await;
            if (200..300).contains(&status) {
                assert!(
                    result.is_ok(),
                    "{case}: a documented success is a refund: {result:?}"
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 12, "only {seen} documented answers found");
}

const GATEWAY_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                           <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
                           </body>\r\n</html>\r\n";
const GATEWAY_504: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n\
                           <center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n\
                           </body>\r\n</html>\r\n";

/// Answers no provider documents, for every provider: gateway pages, an empty 500, a 200 that
/// is not the success body, an undocumented status.
#[tokio::test]
async fn error_shapes_agree() {
    let shapes = [
        ("gateway HTML 502", Canned::html(502, GATEWAY_502)),
        ("gateway HTML 504", Canned::html(504, GATEWAY_504)),
        ("empty 500", Canned::new(500, "text/plain", "")),
        (
            "200 with HTML",
            Canned::html(200, "<html><body>Welcome</body></html>"),
        ),
        ("200 with []", Canned::json(200, "[]")),
        ("418 {}", Canned::json(418, "{}")),
    ];
    for provider in Provider::ALL {
        let request = request_for(provider);
        for (shape, canned) in &shapes {
            let case = format!("{provider} {shape}");
            let err = both_paths(&case, &request, canned)
                .await
                .expect_err(&format!("{case}: not a refund"));
            assert_eq!(err.http_status(), Some(canned.status), "{case}: {err}");
            // A 4xx is a refusal whatever its body; a 5xx or a 2xx that is not the success
            // body may hide an applied refund.
            if (400..500).contains(&canned.status) {
                assert_eq!(err.outcome(), Outcome::NotApplied, "{case}: {err}");
                assert_eq!(err.field(), Some("request"), "{case}: {err}");
                continue;
            }
            assert!(err.outcome_unknown(), "{case}: {err}");
            let expected = if canned.status >= 500 {
                ErrorKind::ServerError
            } else {
                ErrorKind::Protocol
            };
            assert_eq!(err.kind(), &expected, "{case}: {err}");
        }
    }
}

/// A 429 with `Retry-After: 3`: the wait survives both paths.
#[tokio::test]
async fn rate_limit_retry_after_agrees() {
    let canned =
        Canned::json(429, r#"{"message":"Too Many Requests"}"#).with_header("retry-after", "3");
    for provider in Provider::ALL {
        let case = format!("{provider} 429 with retry-after");
        let err = both_paths(&case, &request_for(provider), &canned)
            .await
            .expect_err(&format!("{case}: not a refund"));
        assert_eq!(
            err.retry_after(),
            Some(Duration::from_secs(3)),
            "{case}: {err}"
        );
        assert_eq!(err.http_status(), Some(429), "{case}: {err}");
    }
}

/// An AfterPay 400 whose messages carry an `actionCode` the spec does not list: it still
/// decodes, as an invalid request, every message kept.
#[tokio::test]
async fn afterpay_unlisted_action_code_agrees() {
    let body = r#"[
        {"type":"NotificationMessage","code":"100.001","message":"Capture is being processed",
         "actionCode":"SomethingRivertyAddedLater"},
        {"type":"BusinessError","code":"200.101","message":"Invalid capture number",
         "customerFacingMessage":"Please check the capture","actionCode":"AskConsumerToCallSupport",
         "fieldReference":"captureNumber"}
    ]"#;
    let case = "afterpay 400 with an unlisted actionCode";
    let err = both_paths(
        case,
        &request_for(Provider::AfterPay),
        &Canned::json(400, body),
    )
    .await
    .expect_err(case);
    assert!(
        matches!(err.kind(), ErrorKind::InvalidRequest { .. }),
        "{case}: {err}"
    );
    assert_eq!(err.field(), Some("capture_number"), "{case}: {err}");
    assert_eq!(err.provider_messages().len(), 2, "{case}: {err}");
    assert_eq!(err.outcome(), Outcome::NotApplied, "{case}: {err}");
}

/// A Moyasar 422 naming two fields: both kept.
#[tokio::test]
async fn moyasar_validation_with_two_fields_agrees() {
    let body = r#"{"message":"Data validation failed","errors":{
        "amount":["The value must be greater than or equal to 1."],
        "transaction_id":["has already been taken"]}}"#;
    let case = "moyasar 422 with two fields";
    let err = both_paths(
        case,
        &request_for(Provider::Moyasar),
        &Canned::json(422, body),
    )
    .await
    .expect_err(case);
    assert!(
        matches!(err.kind(), ErrorKind::InvalidRequest { .. }),
        "{case}: {err}"
    );
    let fields: Vec<_> = err
        .provider_messages()
        .iter()
        .map(|m| m.field.as_deref())
        .collect();
    assert_eq!(
        fields,
        [Some("amount"), Some("transaction_id")],
        "{case}: {err}"
    );
}

/// OpenApp documents no bodies: its success and the exceptions its page names, in the
/// assumed `{exception, message}` shape, unsigned (the client does not verify, as the pure
/// function without config).
#[tokio::test]
async fn openapp_answers_agree() {
    use ErrorKind::{Duplicate, ExceedsRefundable, Forbidden, OrderNotFound, Unauthorized};
    let too_much = ExceedsRefundable { limit: None };
    let invalid = ErrorKind::InvalidRequest {
        field: "request".to_owned(),
        reason: "amount: must be positive".to_owned(),
    };
    // (status, body, the error expected; `None` for a registered refund)
    let cases = [
        (
            200,
            r#"{"caseId":"RET-123434","status":"REGISTERED"}"#,
            None,
        ),
        (200, "{}", None),
        (
            400,
            r#"{"exception":"RefundTooMuchException","message":"too much"}"#,
            Some(too_much),
        ),
        (
            400,
            r#"{"message":"amount: must be positive"}"#,
            Some(invalid),
        ),
        (
            404,
            r#"{"exception":"OrderNotFoundException","message":"no order"}"#,
            Some(OrderNotFound),
        ),
        (
            404,
            r#"{"exception":"MerchantWalletNotFoundException","message":"no wallet"}"#,
            Some(Forbidden),
        ),
        (
            409,
            r#"{"exception":"RefundExistsException","message":"exists"}"#,
            Some(Duplicate),
        ),
        (401, "", Some(Unauthorized)),
        (403, "<html>Forbidden</html>", Some(Forbidden)),
    ];
    let request = request_for(Provider::OpenApp);
    for (status, body, expected) in cases {
        let case = format!("openapp {status} {body}");
        let result = both_paths(&case, &request, &Canned::json(status, body)).await;
        assert_eq!(
            result.as_ref().err().map(RefundError::kind),
            expected.as_ref(),
            "{case}: {result:?}"
        );
    }
}

/// Optty's refund answered 401 makes production renew its token and re-send once; the server
/// answers the same, and the result is still the pure function's.
#[tokio::test]
async fn optty_unauthorized_after_renewal_agrees() {
    let canned = Canned::json(401, r#"{"statusCode":401,"message":"Unauthorized"}"#);
    let server = serve(&canned).await;
    let request = request_for(Provider::Optty);
    let production = client(Provider::Optty, &server.base_url)
        .refund(&request)
        .await;
    assert_eq!(
        server.refund_requests.load(Ordering::SeqCst),
        2,
        "the refund is re-sent once with a renewed token"
    );
    let pure = refunds::providers::refund_result(&request, &canned.answer());
    let (production, pure) = (production.unwrap_err(), pure.unwrap_err());
    assert_eq!(judged(&production), judged(&pure));
    assert_eq!(production.kind(), &ErrorKind::Unauthorized);
}

/// A caller's order id never changes where a refund goes: for every provider that puts it in
/// the path, each hostile id either reaches the documented route as exactly one segment that
/// decodes back to the id, or (`.`, `..`, empty) is refused before any I/O naming `order_id`.
#[tokio::test]
async fn order_ids_stay_one_path_segment() {
    let routes = [
        (Provider::Optty, "/orders/", "/refund"),
        (Provider::AfterPay, "/api/v3/orders/", "/refunds"),
        (Provider::Moyasar, "/v1/orders/", "/refund"),
    ];
    let sent = [
        r"..\x",
        "a/../b",
        "%2e%2e",
        "..%2f..",
        r"a\b",
        r"..\payments\0191f5a7",
        r"..\..\token",
        r"ORD\..\..\admin",
        "a?b=c",
        "a#b",
        "a;b",
        "a b",
        "zamówienie-ü-注文",
        "...",
        "a/./b",
        ".%2e",
    ];
    let refused = ["..", ".", "", " "];
    for (provider, before, after) in routes {
        let server = serve(&Canned::json(404, r#"{"message":"Not Found"}"#)).await;
        let refunds = client(provider, &server.base_url);
        for (n, id) in sent.into_iter().enumerate() {
            let mut request = request_for(provider);
            request.order_id = id.to_owned();
            // A fresh reference each time: one reference with another order is refused.
            request.merchant_reference = MerchantReference::new(format!("PATH-{n}")).unwrap();
            let _ = refunds.refund(&request).await;
            let line = server
                .request_lines
                .lock()
                .unwrap()
                .iter()
                .rfind(|line| !line.contains(" /token "))
                .cloned()
                .unwrap_or_else(|| panic!("{provider} {id:?}: nothing was sent"));
            let path = line.split(' ').nth(1).unwrap_or_default();
            let segment = path
                .strip_prefix(before)
                .and_then(|rest| rest.strip_suffix(after))
                .unwrap_or_else(|| panic!("{provider} {id:?} left its route: {line}"));
            assert!(
                !segment.contains('/') && !segment.contains('\\') && !segment.contains('?'),
                "{provider} {id:?}: not one segment: {line}"
            );
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            assert_eq!(decoded, id, "{provider}: {line}");
            server.request_lines.lock().unwrap().clear();
        }
        for id in refused {
            let mut request = request_for(provider);
            request.order_id = id.to_owned();
            let err = refunds
                .refund(&request)
                .await
                .expect_err("refused before any I/O");
            assert!(
                err.problems().iter().any(|p| p.field == "order_id"),
                "{provider} {id:?}: {err}"
            );
            assert_eq!(err.outcome(), Outcome::NotApplied, "{provider} {id:?}");
            let lines = server.request_lines.lock().unwrap().clone();
            assert!(
                lines.iter().all(|line| line.contains(" /token ")),
                "{provider} {id:?} was sent: {lines:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Realistic answers: one file per answer, one reviewed snapshot per file
// ---------------------------------------------------------------------------------------------

/// The placeholder a Moyasar answer file writes for our refund transaction's id (it is derived
/// from the request's merchant reference).
const OUR_TRANSACTION_ID: &str = "{our_transaction_id}";

/// The header an answer file sets to have the harness sign it as OpenApp does (a fresh
/// timestamp and nonce each run), and judge it with signature verification on.
const SIGN_AS_OPENAPP: &str = "x-test-sign-as-openapp";

/// Every answer in `tests/answers/<provider>/*.http`: the shapes real servers send (byte order
/// marks, numbers as `1e2` or strings, framework error bodies, statuses in any case, empty
/// signed acknowledgements). Production over loopback and the pure function must agree, and
/// what they make of it is the file's reviewed snapshot: adding a case is adding a file.
#[tokio::test]
async fn realistic_answers_agree() {
    let answers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/answers");
    let mut seen = 0;
    for provider in Provider::ALL {
        let dir = answers.join(provider.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "http"))
            .collect();
        files.sort();
        for path in files {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let case = format!("{provider} {name}");
            let request = request_for(provider);
            let bytes = std::fs::read(&path).unwrap();
            let ours = request
                .merchant_reference
                .moyasar_transaction_id()
                .to_string();
            let bytes = replace_bytes(&bytes, OUR_TRANSACTION_ID.as_bytes(), ours.as_bytes());
            let mut canned = Canned::parse_http(&bytes);
            let result = if canned.headers.iter().any(|(n, _)| n == SIGN_AS_OPENAPP) {
                canned.headers.retain(|(n, _)| n != SIGN_AS_OPENAPP);
                signed_openapp_paths(&case, &request, canned).await
            } else {
                both_paths(&case, &request, &canned).await
            };
            snapshots(|| {
                insta::assert_snapshot!(
                    format!("answer_{provider}_{name}"),
                    summary(&result),
                    &case
                );
            });
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} answer files found");
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// An OpenApp answer signed as OpenApp signs it, judged with verification on by production (over
/// loopback) and by the pure function.
async fn signed_openapp_paths(
    case: &str,
    request: &RefundRequest,
    mut canned: Canned,
) -> Result<Refund, RefundError> {
    let config = OpenAppConfig::new("http://unused", "api-key", "api-secret").with_timeout(TIMEOUT);
    let epoch_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let signed = refunds::signing::openapp_signature(
        "api-key",
        &refunds::SecretString::from("api-secret"),
        "POST",
        "/merchant/v1/orders/refund",
        epoch_ms,
        "4f9d3c2e-answer-nonce",
        &canned.body,
    );
    canned
        .headers
        .push(("authorization".to_owned(), signed.authorization));
    canned
        .headers
        .push(("x-app-signature".to_owned(), signed.signature));
    let server = serve(&canned).await;
    let production = Refunds::builder()
        .openapp(
            OpenAppConfig::new(&server.base_url, "api-key", "api-secret").with_timeout(TIMEOUT),
        )
        .build()
        .expect("building the client")
        .refund(request)
        .await;
    let pure = refunds::providers::openapp::transformers::refund_result(
        request,
        &canned.answer(),
        Some(&config),
    );
    match (&production, &pure) {
        (Ok(sent), Ok(mapped)) => assert_eq!(sent, mapped, "{case}"),
        (Err(sent), Err(mapped)) => assert_eq!(judged(sent), judged(mapped), "{case}"),
        _ => panic!("{case}: production {production:?}, pure {pure:?}"),
    }
    production
}

/// What a service learns from a result, one fact a line, for the snapshots.
fn summary(result: &Result<Refund, RefundError>) -> String {
    let optional = |money: &Option<Money>| money.map_or("-".to_owned(), |m| m.to_string());
    match result {
        Ok(refund) => format!(
            "refund\nstatus: {:?}\namount: {}\nrefunded_total: {}\ncaptured_total: {}\nprovider_refund_id: {}\n",
            refund.status,
            refund.amount,
            optional(&refund.refunded_total),
            optional(&refund.captured_total),
            refund.provider_refund_id.as_deref().unwrap_or("-"),
        ),
        Err(err) => {
            let mut text = format!(
                "error\nkind: {:?}\noutcome: {:?}\nretryable: {}\nhttp_status: {}\nprovider_code: {}\nprovider_message: {}\n",
                err.kind(),
                err.outcome(),
                err.is_retryable(),
                err.http_status().map_or("-".to_owned(), |s| s.to_string()),
                err.provider_code().unwrap_or("-"),
                err.provider_message().unwrap_or("-"),
            );
            for message in err.provider_messages() {
                text.push_str(&format!("provider_messages: {message}\n"));
            }
            text
        }
    }
}
