#![allow(deprecated, dead_code)] // ProfileFiles / ProfileFileKind: the names aws_config::profile::load takes.
//! The AWS SDK for Rust's own profile-file parser (`aws_config::profile::load`),
//! used by the credentials tests to check what the editor writes.

use aws_config::profile::ProfileSet;
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_types::os_shim_internal::{Env, Fs};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
}

fn load(files: ProfileFiles) -> Result<ProfileSet, String> {
    RUNTIME.with(|rt| {
        rt.block_on(aws_config::profile::load(
            &Fs::real(),
            &Env::from_slice(&[]),
            &files,
            None,
        ))
        .map_err(|e| e.to_string())
    })
}

/// Parses `contents` as a credentials file, the way the SDK does.
#[allow(dead_code)]
pub fn parse_credentials(contents: &str) -> Result<ProfileSet, String> {
    load(
        ProfileFiles::builder()
            .with_contents(ProfileFileKind::Credentials, contents)
            .build(),
    )
}

/// Loads the credentials file at `path`, the way the SDK does.
#[allow(dead_code)]
pub fn load_credentials_file(path: &std::path::Path) -> Result<ProfileSet, String> {
    load(
        ProfileFiles::builder()
            .with_file(ProfileFileKind::Credentials, path)
            .build(),
    )
}

/// `key` in `profile` as the SDK reads it.
#[allow(dead_code)]
pub fn get<'a>(profiles: &'a ProfileSet, profile: &str, key: &str) -> Option<&'a str> {
    profiles.get_profile(profile).and_then(|p| p.get(key))
}

/// What the SDK's profile credentials provider hands out for `profile` from
/// the credentials file at `path`: (access key id, secret, session token).
#[allow(dead_code)]
pub fn profile_credentials(
    path: &std::path::Path,
    profile: &str,
) -> Result<(String, String, Option<String>), String> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&provider_config())
        .profile_files(
            ProfileFiles::builder()
                .with_file(ProfileFileKind::Credentials, path)
                .build(),
        )
        .profile_name(profile)
        .build();
    RUNTIME.with(|rt| {
        rt.block_on(provider.provide_credentials())
            .map(|c| {
                (
                    c.access_key_id().to_string(),
                    c.secret_access_key().to_string(),
                    c.session_token().map(str::to_string),
                )
            })
            .map_err(|e| format!("{e:?}"))
    })
}

/// The SDK providers' set-up, with an HTTP client: the profile provider
/// builds its instance-metadata client up front and panics without one.
/// The daemon's client (rustls with ring): the SDK's default (aws-lc) is
/// kept out of the tests' build.
pub fn provider_config() -> aws_config::provider_config::ProviderConfig {
    aws_config::provider_config::ProviderConfig::default()
        .with_http_client(aws_session_daemon::sts::https_client())
}
