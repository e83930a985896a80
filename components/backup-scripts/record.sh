# Runs once the server is healthy on DEPLOYING_IMAGE (DeploymentRecord): from now on the
# schema holds that image's data, and the upgrade, if one was under way, is finished.
set_state "calendars-caldav deployed=$DEPLOYING_IMAGE reference=$DEPLOYING_REFERENCE"
echo "schema $CALDAV_DB_SCHEMA holds the data of image $(label "$DEPLOYING_IMAGE") ($DEPLOYING_REFERENCE)"
