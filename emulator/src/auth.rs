//! Bearer-token authentication: which user and groups a token stands for, as the real
//! server's token authenticators map a token to `user.Info` (apiserver
//! `pkg/authentication/user`). Tokens are random and issued by the emulator only.

use std::collections::HashMap;
use std::sync::RwLock;

use rand::Rng;

use crate::rbac::UserInfo;

/// The issued tokens.
#[derive(Default)]
pub struct TokenRegistry {
    tokens: RwLock<HashMap<String, UserInfo>>,
}

impl TokenRegistry {
    /// Issues a new random token for `user` in `groups`; `system:authenticated` is added, as
    /// the real authenticator chain adds it to every authenticated user (apiserver
    /// `pkg/authentication/group/authenticated_group_adder.go`).
    pub fn issue(&self, user: &str, groups: &[&str]) -> String {
        let mut rng = rand::rng();
        let token: String = (0..40)
            .map(|_| {
                let n: u8 = rng.random_range(0..36);
                if n < 10 {
                    (b'0' + n) as char
                } else {
                    (b'a' + n - 10) as char
                }
            })
            .collect();
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        let info = UserInfo {
            name: user.to_string(),
            groups,
        };
        if let Ok(mut map) = self.tokens.write() {
            map.insert(token.clone(), info);
        }
        token
    }

    /// The user a bearer token stands for.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        self.tokens.read().ok()?.get(token).cloned()
    }
}
