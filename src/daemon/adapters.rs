//! The real outside systems behind the daemon's ports: the YubiKey (or
//! `mfa_process`) for codes, and STS through the `sts` module.

use std::time::SystemTime;

use super::ports::{
    BoxFuture, Code, CodeProvider, Endpoint, MfaCode, SigningKeys, StsApi, UnitError,
};
use crate::config::{CodeSource, PasswordSpec, RoleSettings};
use crate::oath::{self, OathOptions, PasswordSource};
use crate::session::SessionCredentials;
use crate::sts::StsClients;

/// The config's password setting as the OATH module takes it.
pub fn password_source(spec: &PasswordSpec) -> PasswordSource {
    match spec {
        PasswordSpec::Command(command) => PasswordSource::Command(command.clone()),
        PasswordSpec::File(path) => PasswordSource::File(path.clone()),
    }
}

/// `mfa_process` codes follow AWS's standard TOTP period.
const PROCESS_CODE_PERIOD: u64 = super::ports::DEFAULT_PERIOD;

/// Codes from the YubiKey's OATH applet, or from `mfa_process`.
pub struct RealCodes;

impl CodeProvider for RealCodes {
    fn period(&self, source: &CodeSource) -> u64 {
        match source {
            CodeSource::Oath { credential, .. } => oath::protocol::parse_name(credential)
                .map_or(PROCESS_CODE_PERIOD, |name| name.period),
            CodeSource::Process { .. } => PROCESS_CODE_PERIOD,
        }
    }

    fn code(&self, source: &CodeSource, now: SystemTime) -> Result<Code, UnitError> {
        match source {
            CodeSource::Oath {
                credential,
                reader,
                password,
                timeout,
            } => {
                let options = OathOptions {
                    reader_filter: reader.clone(),
                    password: password.as_ref().map(password_source),
                    password_timeout: *timeout,
                };
                let code = oath::calculate(&options, credential, now, &oath::notify_touch)
                    .map_err(|e| UnitError::from_error(&e))?;
                Ok(Code {
                    value: code.value,
                    step: code.step,
                    period: code.period,
                })
            }
            CodeSource::Process { command, timeout } => {
                let value = oath::run_mfa_process(command, *timeout)
                    .map_err(|e| UnitError::from_error(&e))?;
                Ok(Code {
                    value,
                    step: crate::timestamp::unix_seconds(now) / PROCESS_CODE_PERIOD,
                    period: PROCESS_CODE_PERIOD,
                })
            }
        }
    }
}

impl super::ports::KeyWatch for oath::KeyEvents {
    fn changed(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(oath::KeyEvents::changed(self))
    }
}

/// Watches PC/SC for YubiKeys coming and going.
pub fn start_key_watch() -> super::ports::StartKeyWatch {
    Box::new(|| Box::new(oath::spawn_key_watcher()))
}

/// STS through the SDK, one cached client per endpoint.
pub struct RealSts {
    clients: StsClients,
}

impl RealSts {
    pub fn new() -> Self {
        RealSts {
            clients: StsClients::new(),
        }
    }
}

impl Default for RealSts {
    fn default() -> Self {
        Self::new()
    }
}

impl StsApi for RealSts {
    fn close_connections(&self) {
        self.clients.close_connections();
    }

    fn get_session_token<'a>(
        &'a self,
        long_term: &'a SigningKeys,
        endpoint: &'a Endpoint,
        mfa: MfaCode<'a>,
        duration: u32,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            self.clients
                .get_session_token(long_term, endpoint, mfa, duration)
                .await
                .map_err(|e| UnitError::from_error(&e))
        })
    }

    fn assume_role<'a>(
        &'a self,
        signer: &'a SigningKeys,
        endpoint: &'a Endpoint,
        role: &'a RoleSettings,
        mfa: Option<MfaCode<'a>>,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            self.clients
                .assume_role(signer, endpoint, role, mfa)
                .await
                .map_err(|e| UnitError::from_error(&e))
        })
    }
}
