//! [`Refunds`]: the one entry point a service calls, whichever provider took the payment.

#[cfg(feature = "afterpay")]
use crate::config::AfterPayConfig;
#[cfg(feature = "moyasar")]
use crate::config::MoyasarConfig;
#[cfg(feature = "openapp")]
use crate::config::OpenAppConfig;
#[cfg(feature = "optty")]
use crate::config::OpttyConfig;
use crate::error::RefundError;
use crate::model::{Provider, Refund, RefundRequest};
#[cfg(feature = "afterpay")]
use crate::providers::afterpay::AfterPay;
#[cfg(feature = "moyasar")]
use crate::providers::moyasar::Moyasar;
#[cfg(feature = "openapp")]
use crate::providers::openapp::OpenApp;
#[cfg(feature = "optty")]
use crate::providers::optty::Optty;

/// Refunds through every configured provider.
///
/// Build it with [`Refunds::builder`], naming each provider's base URL explicitly (there is no
/// default: sandbox or production is the caller's choice). Cheap to share: wrap it in an `Arc`.
#[derive(Default)]
pub struct Refunds {
    #[cfg(feature = "optty")]
    optty: Option<Optty>,
    #[cfg(feature = "afterpay")]
    afterpay: Option<AfterPay>,
    #[cfg(feature = "moyasar")]
    moyasar: Option<Moyasar>,
    #[cfg(feature = "openapp")]
    openapp: Option<OpenApp>,
}

impl std::fmt::Debug for Refunds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only which providers are configured: the clients hold credentials.
        f.debug_struct("Refunds")
            .field("providers", &self.configured())
            .finish()
    }
}

/// Collects provider configurations for [`Refunds`].
#[derive(Default)]
pub struct RefundsBuilder {
    refunds: Refunds,
    error: Option<RefundError>,
}

impl std::fmt::Debug for RefundsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefundsBuilder")
            .field("providers", &self.refunds.configured())
            .finish()
    }
}

impl RefundsBuilder {
    fn add<T>(mut self, client: Result<T, RefundError>, slot: fn(&mut Refunds, T)) -> Self {
        match client {
            Ok(client) => slot(&mut self.refunds, client),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// Enables Optty.
    #[cfg(feature = "optty")]
    pub fn optty(self, config: OpttyConfig) -> Self {
        self.add(Optty::new(config), |r, c| r.optty = Some(c))
    }

    /// Enables AfterPay (Riverty).
    #[cfg(feature = "afterpay")]
    pub fn afterpay(self, config: AfterPayConfig) -> Self {
        self.add(AfterPay::new(&config), |r, c| r.afterpay = Some(c))
    }

    /// Enables Moyasar.
    #[cfg(feature = "moyasar")]
    pub fn moyasar(self, config: MoyasarConfig) -> Self {
        self.add(Moyasar::new(&config), |r, c| r.moyasar = Some(c))
    }

    /// Enables OpenApp.
    #[cfg(feature = "openapp")]
    pub fn openapp(self, config: OpenAppConfig) -> Self {
        self.add(OpenApp::new(config), |r, c| r.openapp = Some(c))
    }

    /// The client, or the first configuration error (an API key that cannot be a header).
    pub fn build(self) -> Result<Refunds, RefundError> {
        match self.error {
            Some(err) => Err(err),
            None => Ok(self.refunds),
        }
    }
}

impl Refunds {
    /// Starts a client with no provider configured.
    pub fn builder() -> RefundsBuilder {
        RefundsBuilder::default()
    }

    /// The providers this client can refund through.
    pub fn configured(&self) -> Vec<Provider> {
        Provider::ALL
            .into_iter()
            .filter(|provider| self.is_configured(*provider))
            .collect()
    }

    fn is_configured(&self, provider: Provider) -> bool {
        match provider {
            #[cfg(feature = "optty")]
            Provider::Optty => self.optty.is_some(),
            #[cfg(feature = "afterpay")]
            Provider::AfterPay => self.afterpay.is_some(),
            #[cfg(feature = "moyasar")]
            Provider::Moyasar => self.moyasar.is_some(),
            #[cfg(feature = "openapp")]
            Provider::OpenApp => self.openapp.is_some(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Refunds `request` through its provider.
    ///
    /// The request is validated first ([`RefundRequest::validate`]): invalid input fails with
    /// a field-level [`ErrorKind::InvalidRequest`](crate::ErrorKind) and nothing is sent. The
    /// wire body depends only on the request, so sending the same request again after a
    /// retryable error ([`RefundError::is_retryable`]) carries the same duplicate key.
    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        request.validate()?;
        let not_configured = || {
            RefundError::invalid(
                "provider",
                format!("{} is not configured in this client", request.provider),
            )
            .provider(request.provider)
        };
        match request.provider {
            #[cfg(feature = "optty")]
            Provider::Optty => match &self.optty {
                Some(optty) => optty.refund(request).await,
                None => Err(not_configured()),
            },
            #[cfg(feature = "afterpay")]
            Provider::AfterPay => match &self.afterpay {
                Some(afterpay) => afterpay.refund(request).await,
                None => Err(not_configured()),
            },
            #[cfg(feature = "moyasar")]
            Provider::Moyasar => match &self.moyasar {
                Some(moyasar) => moyasar.refund(request).await,
                None => Err(not_configured()),
            },
            #[cfg(feature = "openapp")]
            Provider::OpenApp => match &self.openapp {
                Some(openapp) => openapp.refund(request).await,
                None => Err(not_configured()),
            },
            #[allow(unreachable_patterns)]
            _ => Err(not_configured()),
        }
    }
}
