//! Benchmark 2: reaction. With `run` going and everything fresh: a profile
//! deleted by hand (the file replaced the way an editor saves), and a
//! section added to the config; the time from the change until the
//! credentials file holds the profile again. Each costs one AssumeRole (the
//! MFA session is cached), so the STS round trip is measured too, with the
//! daemon's own STS client code, for comparison.

use std::time::{Duration, Instant};

use aws_session_daemon::config::RoleSettings;
use aws_session_daemon::sts::{Endpoint, SigningKeys, StsClients};
use serde_json::json;

use crate::daemon::{Running, accounts_from};
use crate::measure::wait_until;
use crate::report::{Table, Verdict, median, ms, percentile, verdict};
use crate::rig::Rig;

/// The median of `trials` AssumeRole calls through the front (a warm
/// client, as the running daemon has).
pub fn sts_round_trip(rig: &Rig, trials: usize) -> Result<Vec<Duration>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let clients = StsClients::new();
        let endpoint = Endpoint::new("us-east-1", Some(rig.front.url.clone()));
        let signer = SigningKeys::long_term(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        );
        let role = RoleSettings {
            arn: "arn:aws:iam::399999999999:role/Admin".into(),
            duration: 3600,
            session_name: "bench".into(),
            source_identity: None,
            external_id: None,
            policy_arns: Vec::new(),
            policy: None,
        };
        let mut samples = Vec::new();
        for i in 0..=trials {
            let started = Instant::now();
            clients
                .assume_role(&signer, &endpoint, &role, None, now())
                .await
                .map_err(|e| format!("AssumeRole for the round trip: {e}"))?;
            if i > 0 {
                samples.push(started.elapsed()); // the first one opens the connection
            }
        }
        Ok(samples)
    })
}

fn remove_section(text: &str, profile: &str) -> String {
    let header = format!("[{profile}]");
    let Some(start) = text.find(&header) else {
        return text.to_string();
    };
    let end = text[start + header.len()..]
        .find("\n[")
        .map_or(text.len(), |i| start + header.len() + i + 1);
    format!("{}{}", &text[..start], &text[end..])
}

pub fn run(rig: &Rig, trials: usize) -> Result<(Table, serde_json::Value), String> {
    let mut profiles = accounts_from(310_000_000_000, 3);
    let serial = rig.new_device();
    let config = |profiles: &[String]| rig.config(&serial, profiles);
    let home = rig.home(&config(&profiles));
    let mut daemon = Running::start(&home, &["run"]);
    let timeout = Duration::from_secs(30);
    if wait_until(timeout, || home.written(&profiles) == profiles.len()).is_none() {
        return Err(format!(
            "the daemon did not write the first profiles:\n{}",
            daemon.log()
        ));
    }
    let settle = || std::thread::sleep(Duration::from_millis(300));
    settle();

    let mut deleted = Vec::new();
    for trial in 0..trials {
        let profile = profiles[trial % profiles.len()].clone();
        let without = remove_section(&home.text(), &profile);
        let one = [profile.clone()];
        home.write_credentials(&without);
        let Some(took) = wait_until(timeout, || home.written(&one) == 1) else {
            return Err(format!(
                "profile {profile} was not restored:\n{}",
                daemon.log()
            ));
        };
        deleted.push(took);
        settle();
    }

    let mut added = Vec::new();
    for trial in 0..trials {
        let profile = format!("{:012}", 320_000_000_000u64 + trial as u64);
        profiles.push(profile.clone());
        let one = [profile.clone()];
        home.write_config(&config(&profiles));
        let Some(took) = wait_until(timeout, || home.written(&one) == 1) else {
            return Err(format!(
                "section {profile} was not created:\n{}",
                daemon.log()
            ));
        };
        added.push(took);
        settle();
    }
    if !daemon.alive() {
        return Err(format!("the daemon died:\n{}", daemon.log()));
    }
    daemon.terminate(Duration::from_secs(2));

    let round_trips = sts_round_trip(rig, trials.max(20))?;
    let rtt = median(&round_trips);
    let limit = Duration::from_millis(250) + rtt;
    let mut table = Table::new(
        "2. Reaction with `run` going (change → file reconciled)",
        &[
            "change",
            "trials",
            "median",
            "p95",
            "max",
            "target (median)",
            "",
        ],
    );
    let mut figures = serde_json::Map::new();
    for (name, key, samples) in [
        ("profile deleted by hand", "deleted", &deleted),
        ("section added to the config", "added", &added),
    ] {
        let m = median(samples);
        table.row(vec![
            name.to_string(),
            samples.len().to_string(),
            ms(m),
            ms(percentile(samples, 95.0)),
            ms(*samples.iter().max().unwrap()),
            format!("< {}", ms(limit)),
            verdict(Verdict::of(m < limit)),
        ]);
        figures.insert(
            key.to_string(),
            json!({
                "trials": samples.len(),
                "median_ms": m.as_secs_f64() * 1000.0,
                "p95_ms": percentile(samples, 95.0).as_secs_f64() * 1000.0,
            }),
        );
    }
    table.row(vec![
        "STS round trip (one AssumeRole via the front to moto)".to_string(),
        round_trips.len().to_string(),
        ms(rtt),
        ms(percentile(&round_trips, 95.0)),
        ms(*round_trips.iter().max().unwrap()),
        String::new(),
        verdict(Verdict::Info),
    ]);
    figures.insert(
        "sts_round_trip_median_ms".into(),
        json!(rtt.as_secs_f64() * 1000.0),
    );
    table.note(
        "Target: median under 250 ms plus one STS round trip. The deletion replaces the file by \
         rename, as an editor saves; the addition renames a new config.toml into place. Times are \
         from the rename to the moment the file (polled every 2 ms) holds the profile with a \
         session token; 300 ms pause between trials. The daemon debounces file events for 50 ms.",
    );
    Ok((table, serde_json::Value::Object(figures)))
}

/// The wall clock, which the STS calls take as an argument.
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
