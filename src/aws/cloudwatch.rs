//! CloudWatch: the one metric drctl reads, RDS ReplicaLag.
//!
//! The Rust SDK speaks CloudWatch's newest wire protocol (Smithy RPCv2 CBOR). Endpoints that
//! only speak the original Query protocol (moto, the sandbox under drctl's tests, and some
//! VPC-endpoint proxies) answer it with an XML error the SDK cannot parse, so a call that fails
//! that way is made again over the Query protocol, signed with SigV4 from the same credentials,
//! bounded by the same timeouts. CloudWatch itself accepts both.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_smithy_types::DateTime;

use super::{classify, sdk_err, AwsError, AwsResult, ErrorKind};
use crate::config::env::AwsSettings;

#[derive(Debug, Clone)]
pub struct CloudWatch {
    pub(crate) c: aws_sdk_cloudwatch::Client,
    pub region: String,
    pub(crate) creds: Option<SharedCredentialsProvider>,
    pub(crate) settings: AwsSettings,
}

const OP: &str = "GetMetricStatistics";

impl CloudWatch {
    /// The newest `AWS/RDS ReplicaLag` datapoint (seconds) of a replica within `window`, if any.
    /// Maximum per minute: the conservative reading when deciding whether promotion loses data.
    pub async fn replica_lag(&self, instance_id: &str, window: Duration) -> AwsResult<Option<f64>> {
        let now = SystemTime::now();
        let (start, end) = (now - window, now + Duration::from_secs(60));
        let res = self
            .c
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name("ReplicaLag")
            .dimensions(
                Dimension::builder()
                    .name("DBInstanceIdentifier")
                    .value(instance_id)
                    .build(),
            )
            .start_time(DateTime::from(start))
            .end_time(DateTime::from(end))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await
            .map_err(sdk_err!("cloudwatch", "GetMetricStatistics", self.region));
        match res {
            Ok(out) => {
                let newest = out
                    .datapoints()
                    .iter()
                    .filter(|d| d.maximum().is_some())
                    .max_by_key(|d| {
                        d.timestamp()
                            .map(|t| (t.secs(), t.subsec_nanos()))
                            .unwrap_or((0, 0))
                    });
                Ok(newest.and_then(|d| d.maximum()))
            }
            // An answer the CBOR decoder could not read: ask again in the Query protocol.
            Err(e) if e.kind == ErrorKind::Other && e.code.is_none() => {
                self.replica_lag_query(instance_id, start, end).await
            }
            Err(e) => Err(e),
        }
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> AwsError {
        AwsError::local("cloudwatch", OP, &self.region, kind, msg)
    }

    async fn replica_lag_query(
        &self,
        instance_id: &str,
        start: SystemTime,
        end: SystemTime,
    ) -> AwsResult<Option<f64>> {
        let iso = |t: SystemTime| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let body = form(&[
            ("Action", OP),
            ("Version", "2010-08-01"),
            ("Namespace", "AWS/RDS"),
            ("MetricName", "ReplicaLag"),
            ("Dimensions.member.1.Name", "DBInstanceIdentifier"),
            ("Dimensions.member.1.Value", instance_id),
            ("StartTime", &iso(start)),
            ("EndTime", &iso(end)),
            ("Period", "60"),
            ("Statistics.member.1", "Maximum"),
        ]);
        let url = self
            .settings
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://monitoring.{}.amazonaws.com/", self.region));
        let http = reqwest::Client::builder()
            .timeout(self.settings.attempt_timeout)
            .build()
            .map_err(|e| self.err(ErrorKind::Other, e.to_string()))?;
        let attempts = self.settings.max_attempts.max(1);
        let call = async {
            let mut last = self.err(ErrorKind::Other, "no attempt made");
            for attempt in 0..attempts {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt.min(5)))).await;
                }
                match self.query_once(&http, &url, &body).await {
                    Ok(v) => return Ok(v),
                    Err(e) if e.is_retryable() => last = e,
                    Err(e) => return Err(e),
                }
            }
            Err(last)
        };
        tokio::time::timeout(self.settings.operation_timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(self.err(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within the operation timeout {}",
                        humantime::format_duration(self.settings.operation_timeout)
                    ),
                ))
            })
    }

    async fn query_once(
        &self,
        http: &reqwest::Client,
        url: &str,
        body: &str,
    ) -> AwsResult<Option<f64>> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let provider = self
            .creds
            .as_ref()
            .ok_or_else(|| self.err(ErrorKind::Other, "no credentials provider configured"))?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| self.err(ErrorKind::Other, format!("no credentials: {e}")))?;
        let identity = creds.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("monitoring")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| self.err(ErrorKind::Other, e.to_string()))?
            .into();
        let ct = "application/x-www-form-urlencoded; charset=utf-8";
        let signable = SignableRequest::new(
            "POST",
            url,
            [("content-type", ct)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| self.err(ErrorKind::Other, e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| self.err(ErrorKind::Other, e.to_string()))?
            .into_parts();
        let mut req = http
            .post(url)
            .header("content-type", ct)
            .body(body.to_string());
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| {
            self.err(
                if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unavailable
                },
                e.to_string(),
            )
        })?;
        let status = resp.status().as_u16();
        let rid = resp
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = resp
            .text()
            .await
            .map_err(|e| self.err(ErrorKind::Unavailable, e.to_string()))?;
        if status >= 300 {
            let code = tag(&text, "Code").map(String::from);
            let mut e = self.err(
                classify(code.as_deref(), status),
                tag(&text, "Message").unwrap_or("error").to_string(),
            );
            e.code = code;
            e.request_id = rid.or_else(|| tag(&text, "RequestId").map(String::from));
            return Err(e);
        }
        // <member><Timestamp>..</Timestamp><Maximum>..</Maximum>...</member>, newest wins.
        let mut best: Option<(String, f64)> = None;
        for m in text.split("<member>").skip(1) {
            let (Some(ts), Some(max)) = (
                tag(m, "Timestamp"),
                tag(m, "Maximum").and_then(|v| v.trim().parse::<f64>().ok()),
            ) else {
                continue;
            };
            if best.as_ref().is_none_or(|(t, _)| ts > t.as_str()) {
                best = Some((ts.to_string(), max));
            }
        }
        Ok(best.map(|b| b.1))
    }
}

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn form(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_xml_and_encodes_forms() {
        assert_eq!(
            super::tag("<a><Maximum>3.5</Maximum></a>", "Maximum"),
            Some("3.5")
        );
        assert_eq!(
            super::form(&[("Namespace", "AWS/RDS"), ("T", "2026-01-01T00:00:00Z")]),
            "Namespace=AWS%2FRDS&T=2026-01-01T00%3A00%3A00Z"
        );
    }
}
